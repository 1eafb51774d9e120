import Foundation
import Hummingbird
import NIOConcurrencyHelpers

/// WeCom's customer-contact API as a loopback fake, with WeCom's answers (HTTP 200, `errcode`/`errmsg`):
/// - `gettoken?corpid=&corpsecret=`: 40013 invalid corpid, 40001 invalid secret; tokens live 7,200 s;
///   a call with a missing, unknown or expired token gets 41001, 40014 or 42001.
/// - `externalcontact/get?external_userid=`: the contact (name, type, unionid when the corp is bound
///   to the Official Account's Open Platform) and `follow_user` with each member's state; 84061 for
///   an unknown contact.
/// - `externalcontact/send_welcome_msg`: accepted once per WelcomeCode within 20 s of its event;
///   41051 once the code was used; an unknown or expired code gets 40097 invalid args (WeCom does
///   not publish the expired-code answer; the gateway never calls that late).
/// - group send (`add_msg_template`, `get_groupmsg_send_result`, `get_groupmsg_list_v2`,
///   `get_groupmsg_task`): see `WeComFake+Groups.swift`.
public final class WeComFake: Sendable {
    public struct Contact: Sendable {
        public let name: String
        public let unionId: String?
        public let followUsers: [(userId: String, state: String?)]

        public init(name: String, unionId: String?, followUsers: [(userId: String, state: String?)]) {
            self.name = name
            self.unionId = unionId
            self.followUsers = followUsers
        }
    }

    public struct Welcome: Sendable {
        public let code: String
        /// The request body, as JSON text.
        public let body: String
        /// Milliseconds after the code was issued.
        public let afterMs: Int64
    }

    struct State {
        var secrets: [String: String] = [:]
        var tokens: [String: (corpId: String, expiresAtMs: Int64)] = [:]
        var contacts: [String: Contact] = [:]
        var codes: [String: (issuedAtMs: Int64, used: Bool)] = [:]
        var welcomes: [Welcome] = []
        var counter = 0
        var groupMessages: [GroupMessage] = []
        /// External contact -> days (since 1970, UTC) it received a group message.
        var received: [String: Set<Int64>] = [:]
    }

    let state = NIOLockedValueBox(State())
    public let ledger: FakeLedger
    let clock: @Sendable () -> Int64

    public init(ledger: FakeLedger, clock: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }) {
        self.ledger = ledger
        self.clock = clock
    }

    public func addCorp(corpId: String, secret: String) { state.withLockedValue { $0.secrets[corpId] = secret } }
    public func addContact(_ externalUserId: String, _ contact: Contact) { state.withLockedValue { $0.contacts[externalUserId] = contact } }
    /// A WelcomeCode as WeCom puts in an add event, valid 20 s from now.
    public func issueWelcomeCode(_ code: String) { state.withLockedValue { $0.codes[code] = (clock(), false) } }
    public var welcomes: [Welcome] { state.withLockedValue { $0.welcomes } }

    public func add(to router: Router<BasicRequestContext>) {
        router.get("/cgi-bin/gettoken") { request, _ -> Response in
            if let forced = self.ledger.begin("wecom.token") { return forced.response }
            let q = request.uri.queryParameters
            let corp = q.get("corpid").map { String($0) } ?? ""
            let secret = q.get("corpsecret").map { String($0) } ?? ""
            let now = self.clock()
            let token: String? = self.state.withLockedValue { s in
                guard let expected = s.secrets[corp], expected == secret else { return nil }
                s.counter += 1
                let t = "fake-wecom-token-\(s.counter)"
                s.tokens[t] = (corp, now + 7_200_000)
                return t
            }
            guard self.state.withLockedValue({ $0.secrets[corp] != nil }) else { return WeChatFake.error(40013, "invalid corpid") }
            guard let token else { return WeChatFake.error(40001, "invalid secret") }
            return jsonResponse(["errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200])
        }
        router.get("/cgi-bin/externalcontact/get") { request, _ -> Response in
            if let forced = self.ledger.begin("wecom.externalcontact.get") { return forced.response }
            if let refused = self.authorize(request) { return refused }
            let id = request.uri.queryParameters.get("external_userid").map { String($0) } ?? ""
            guard let c = self.state.withLockedValue({ $0.contacts[id] }) else { return WeChatFake.error(84061, "not external contact") }
            var external: [String: Any] = ["external_userid": id, "name": c.name, "type": 1, "gender": 0]
            if let u = c.unionId { external["unionid"] = u }
            let follows: [[String: Any]] = c.followUsers.map { f in
                var o: [String: Any] = ["userid": f.userId, "remark": "", "createtime": Int(self.clock() / 1000), "add_way": 1]
                if let s = f.state { o["state"] = s }
                return o
            }
            return jsonResponse(["errcode": 0, "errmsg": "ok", "external_contact": external, "follow_user": follows])
        }
        router.post("/cgi-bin/externalcontact/send_welcome_msg") { request, _ -> Response in
            let buffer = try await request.body.collect(upTo: 1 << 16)
            if let forced = self.ledger.begin("wecom.send_welcome_msg") { return forced.response }
            if let refused = self.authorize(request) { return refused }
            guard let body = jsonObject(buffer), let code = body["welcome_code"] as? String, body["text"] != nil || body["attachments"] != nil else {
                return WeChatFake.error(47001, "data format error")
            }
            let now = self.clock()
            let outcome: (Int, String)? = self.state.withLockedValue { s in
                guard let c = s.codes[code], now - c.issuedAtMs <= 20_000 else { return (40097, "invalid args") }
                guard !c.used else { return (41051, "externaluser has started chatting") }
                s.codes[code]!.used = true
                s.welcomes.append(Welcome(code: code, body: String(buffer: buffer), afterMs: now - c.issuedAtMs))
                return nil
            }
            if let (code, message) = outcome { return WeChatFake.error(code, message) }
            return WeChatFake.error(0, "ok")
        }
        addGroupSendRoutes(to: router)
    }

    /// WeCom's answer for a missing (41001), unknown (40014) or expired (42001) token; nil when valid.
    func authorize(_ request: Request) -> Response? {
        guard let token = request.uri.queryParameters.get("access_token").map({ String($0) }), !token.isEmpty else {
            return WeChatFake.error(41001, "access_token missing")
        }
        let now = clock()
        return state.withLockedValue { s in
            guard let t = s.tokens[token] else { return WeChatFake.error(40014, "invalid access_token") }
            return t.expiresAtMs > now ? nil : WeChatFake.error(42001, "access_token expired")
        }
    }
}
