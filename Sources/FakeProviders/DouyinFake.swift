import Foundation
import HTTPTypes
import GatewayCrypto
import Hummingbird
import NIOConcurrencyHelpers

/// The Douyin open platform's private-message reply, as a loopback fake:
/// - `POST /oauth/refresh_token/` (form `client_key`, `grant_type=refresh_token`, `refresh_token`):
///   `{"data": {"access_token", "expires_in", "refresh_token", "open_id", "scope", "error_code": 0,
///   "description"}, "message": "success"}`; a wrong key or refresh token answers error_code 10008.
/// - `POST /oauth/renew_refresh_token/` (form `client_key`, `refresh_token`): a new refresh token for 30
///   days, the old one refused from then on; at most five renewals (then 10010).
/// - `POST /im/send/msg/?open_id=<the enterprise account>` with header `access-token`: the body's
///   `to_user_id`, `msg_id`, `conversation_id` must name a message that user sent the account
///   (`received`), within 24 hours of it, `scene` `im_reply_msg`, `content` `{msg_type: 1, text: {text}}`.
///   Answers `{"data": {"msg_id", "error_code": 0, "description": ""}, "extra": {...}}`; an expired or
///   unknown token is error_code 2190008 / 2190002, anything else wrong 2100005 (parameter error),
///   outside the window 2190015.
public final class DouyinFake: Sendable {
    public struct Sent: Sendable, Equatable {
        public let to: String
        public let text: String
        public let msgId: String
        public let conversationId: String

        public init(to: String, text: String, msgId: String, conversationId: String) {
            self.to = to
            self.text = text
            self.msgId = msgId
            self.conversationId = conversationId
        }
    }

    struct Message {
        let user: String
        let conversation: String
        let atMs: Int64
    }

    struct State {
        var token = ""
        var tokenExpiresAt = Date.distantPast
        var tokensIssued = 0
        var messages: [String: Message] = [:]
        var sent: [Sent] = []
        var refused: [Int: Int] = [:]
        var refreshToken: String
        var renewals = 0
    }

    let clientKey: String
    let accountOpenId: String
    /// How long the refresh token has left, as the refresh answer says (`refresh_expires_in`).
    let refreshExpiresIn: Int
    let state: NIOLockedValueBox<State>

    public init(clientKey: String, refreshToken: String, accountOpenId: String, refreshExpiresIn: Int = 2_592_000) {
        self.clientKey = clientKey
        self.accountOpenId = accountOpenId
        self.refreshExpiresIn = refreshExpiresIn
        state = NIOLockedValueBox(State(refreshToken: refreshToken))
    }

    /// Refresh-token renewals so far, and the refresh token now valid.
    public var renewals: Int { state.withLockedValue { $0.renewals } }
    public var currentRefreshToken: String { state.withLockedValue { $0.refreshToken } }

    public var sent: [Sent] { state.withLockedValue { $0.sent } }
    public var tokensIssued: Int { state.withLockedValue { $0.tokensIssued } }
    /// Refusals by error_code.
    public var refused: [Int: Int] { state.withLockedValue { $0.refused } }
    /// A private message `user` sent the account (what the webhook told the gateway).
    public func received(user: String, msgId: String, conversation: String, atMs: Int64) {
        state.withLockedValue { $0.messages[msgId] = Message(user: user, conversation: conversation, atMs: atMs) }
    }
    /// The account authorizes the app again: a new refresh token, the old (and any renewed) one refused.
    public func reauthorize(refreshToken: String) { state.withLockedValue { $0.refreshToken = refreshToken; $0.renewals = 0 } }
    /// The current access token expires now.
    public func expireToken() { state.withLockedValue { $0.tokenExpiresAt = .distantPast } }

    static func answer(_ code: Int, _ description: String, msgId: String? = nil) -> Response {
        var data: [String: Any] = ["error_code": code, "description": description]
        if let msgId { data["msg_id"] = msgId }
        let extra: [String: Any] = ["error_code": code, "description": description, "sub_error_code": 0, "logid": UUID().uuidString, "now": Int(Date().timeIntervalSince1970)]
        return jsonResponse(["data": data, "extra": extra])
    }

    public func add(to router: Router<BasicRequestContext>) {
        router.post("/oauth/refresh_token/") { request, _ -> Response in
            let form = formFields(String(buffer: try await request.body.collect(upTo: 1 << 16)))
            let current = self.currentRefreshToken
            guard form["grant_type"] == "refresh_token", let key = form["client_key"], let token = form["refresh_token"],
                ConstantTime.equals(key, self.clientKey), ConstantTime.equals(token, current)
            else { return jsonResponse(["data": ["error_code": 10008, "description": "refresh_token is invalid or expired"], "message": "error"]) }
            let (access, left) = self.state.withLockedValue { s -> (String, Int) in
                let now = Date()
                if s.tokenExpiresAt <= now {
                    s.token = "act." + UUID().uuidString.lowercased()
                    s.tokenExpiresAt = now.addingTimeInterval(1_296_000)
                    s.tokensIssued += 1
                }
                return (s.token, Int(s.tokenExpiresAt.timeIntervalSince(now)))
            }
            return jsonResponse([
                "data": [
                    "access_token": access, "expires_in": left, "refresh_token": current, "refresh_expires_in": self.refreshExpiresIn,
                    "open_id": self.accountOpenId, "scope": "im.direct_message", "error_code": 0, "description": "",
                ], "message": "success",
            ])
        }
        router.post("/oauth/renew_refresh_token/") { request, _ -> Response in
            let form = formFields(String(buffer: try await request.body.collect(upTo: 1 << 16)))
            return self.state.withLockedValue { s -> Response in
                guard let key = form["client_key"], let token = form["refresh_token"], ConstantTime.equals(key, self.clientKey),
                    ConstantTime.equals(token, s.refreshToken)
                else { return jsonResponse(["data": ["error_code": 10008, "description": "refresh_token is invalid or expired"], "message": "error"]) }
                guard s.renewals < 5 else { return jsonResponse(["data": ["error_code": 10010, "description": "refresh_token renewed too many times"], "message": "error"]) }
                s.renewals += 1
                s.refreshToken = "rft.renewed-\(s.renewals)-" + UUID().uuidString.lowercased()
                return jsonResponse(["data": ["refresh_token": s.refreshToken, "expires_in": 2_592_000, "error_code": 0, "description": ""], "message": "success"])
            }
        }
        router.post("/im/send/msg/") { request, _ -> Response in
            let body = jsonObject(try await request.body.collect(upTo: 1 << 20)) ?? [:]
            let token = request.headers[HTTPField.Name("access-token")!] ?? ""
            let openId = request.uri.queryParameters.get("open_id").map { String($0) } ?? ""
            return self.state.withLockedValue { s -> Response in
                func refuse(_ code: Int, _ why: String) -> Response {
                    s.refused[code, default: 0] += 1
                    return Self.answer(code, why)
                }
                guard !s.token.isEmpty, ConstantTime.equals(token, s.token) else { return refuse(2190002, "access_token is invalid") }
                guard s.tokenExpiresAt > Date() else { return refuse(2190008, "access_token has expired") }
                guard openId == self.accountOpenId else { return refuse(2100005, "open_id does not match the authorized account") }
                guard body["scene"] as? String == "im_reply_msg", let to = body["to_user_id"] as? String, let msgId = body["msg_id"] as? String,
                    let conversation = body["conversation_id"] as? String, let content = body["content"] as? [String: Any],
                    (content["msg_type"] as? NSNumber)?.intValue == 1, let text = (content["text"] as? [String: Any])?["text"] as? String, !text.isEmpty
                else { return refuse(2100005, "parameter error") }
                guard let m = s.messages[msgId], m.user == to, m.conversation == conversation else { return refuse(2100005, "msg_id does not belong to this conversation") }
                guard Int64(Date().timeIntervalSince1970 * 1000) - m.atMs <= 24 * 3_600_000 else { return refuse(2190015, "the reply window has passed") }
                s.sent.append(Sent(to: to, text: text, msgId: msgId, conversationId: conversation))
                return Self.answer(0, "", msgId: "sent-\(s.sent.count)")
            }
        }
    }
}
