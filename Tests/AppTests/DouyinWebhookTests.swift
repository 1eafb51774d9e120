import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Ingress
import Store
import XCTest

/// `POST /webhooks/douyin/{account}` on a real redis-server, with bodies in the open platform's
/// documented shapes: the signature, the address check, the time window, retries by Msg-Id, and a
/// message creating a customer; bad input refused with nothing stored.
final class DouyinWebhookTests: XCTestCase {
    static let secret = "douyin-client-secret-0123"
    static let clientKey = "awr8bfr64vxgk036"

    static func harness() throws -> Harness {
        try Harness { $0.douyin.accounts = [.init(id: "dy", clientKey: clientKey, clientSecret: secret)] }
    }

    static func post(
        _ client: any TestClientProtocol, _ body: String, account: String = "dy", secret: String = DouyinWebhookTests.secret, msgId: String? = nil, signed: Bool = true
    ) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: "application/json"]
        if signed { headers[HTTPField.Name(DouyinWebhookRoutes.signatureHeader)!] = DouyinWebhookRoutes.signature(secret: secret, body: Array(body.utf8)) }
        if let msgId { headers[HTTPField.Name("Msg-Id")!] = msgId }
        return try await client.execute(uri: "/webhooks/douyin/\(account)", method: .post, headers: headers, body: ByteBuffer(string: body))
    }

    /// A private message in the documented shape (`content` serialized), `create_time` in seconds.
    static func message(from openId: String, text: String, id: String, atSeconds: Int64, clientKey: String = DouyinWebhookTests.clientKey) -> String {
        let content = #"{\"conversation_short_id\":\"@4F8A0vXKXctkaiPz\",\"server_message_id\":\"\#(id)\",\"conversation_type\":1,\"create_time\":\#(atSeconds),\"message_type\":\"text\",\"text\":\"\#(text)\"}"#
        return #"{"event":"im_receive_msg","client_key":"\#(clientKey)","from_user_id":"\#(openId)","to_user_id":"_000bfeGRgbkwDMMksxyg4auR","content":"\#(content)","log_id":"2022120516373301015903714833078B1B"}"#
    }


    func test_handshake_signature_window_retries_andAMessageCreatingACustomer() async throws {
        let h = try Self.harness()
        let now = h.now / 1000
        let openId = "_000f9pF8lTroNtA9pfLjPohf1qIUzLdiWRs"
        try await h.test { client in
            // The address check: answered with its challenge, once signed.
            let verify = #"{"event":"verify_webhook","client_key":"","content":{"challenge":12345}}"#
            let challenge = try await Self.post(client, verify)
            XCTAssertEqual(challenge.status, .ok)
            XCTAssertEqual(challenge.json["challenge"] as? Int, 12345)
            let unsignedCheck = try await Self.post(client, verify, signed: false)
            XCTAssertEqual(unsignedCheck.status, .forbidden)

            let hello = Self.message(from: openId, text: "Could we book a demo?", id: "7113", atSeconds: now)
            let forged = try await Self.post(client, hello, secret: "someone-elses-secret", msgId: "m-1")
            XCTAssertEqual(forged.status, .forbidden)
            XCTAssertEqual(forged.errorCode, "bad_signature")
            let otherApp = try await Self.post(client, Self.message(from: openId, text: "hi", id: "7114", atSeconds: now, clientKey: "another-app"), msgId: "m-2")
            XCTAssertEqual(otherApp.status, .forbidden)
            let stale = try await Self.post(client, Self.message(from: openId, text: "old", id: "7115", atSeconds: now - 3600), msgId: "m-3")
            XCTAssertEqual(stale.status, .forbidden, "outside the window: a replay")
            XCTAssertEqual(stale.errorCode, "stale")
            let unknown = try await Self.post(client, hello, account: "nobody", msgId: "m-1")
            XCTAssertEqual(unknown.status, .notFound)
            for bad in ["not json", #"{"event":"im_receive_msg","from_user_id":"x y","content":{"create_time":1}}"#, #"{"content":{}}"#,
                #"{"event":"im_receive_msg","from_user_id":"abc","content":"{broken"}"#]
            {
                let r = try await Self.post(client, bad, msgId: "m-bad")
                XCTAssertEqual(r.status, .badRequest, bad)
                XCTAssertNotNil(r.errorCode, bad)
            }
            let huge = try await Self.post(client, String(repeating: "x", count: h.config.server.maxBodyBytes + 1))
            XCTAssertEqual(huge.status, .contentTooLarge)
            let nothing = try await h.customersAndInteractions()
            XCTAssertEqual(nothing, [0, 0], "refused events store nothing")

            // The message: a customer with a douyin identity, the text on its timeline, scored as a text.
            let ok = try await Self.post(client, hello, msgId: "m-1")
            XCTAssertEqual(ok.status, .ok)
            XCTAssertEqual(ok.json["result"] as? String, "stored")
            // The platform's retry (same Msg-Id) is answered again and stored once.
            let retry = try await Self.post(client, hello, msgId: "m-1")
            XCTAssertEqual(retry.status, .ok)
            XCTAssertEqual(retry.json["result"] as? String, "duplicate")

            // A follow: the same customer, now with consent; an event we do not take is acknowledged.
            let follow = #"{"event":"new_follow_action","client_key":"\#(Self.clientKey)","from_user_id":"\#(openId)","to_user_id":"e3af6e1d","content":"{\"action_type\":1,\"action_time\":\#(now)}","log_id":"20230615144730000000"}"#
            let followed = try await Self.post(client, follow, msgId: "m-2f")
            XCTAssertEqual(followed.status, .ok)
            let digg = try await Self.post(client, #"{"event":"new_video_digg","client_key":"\#(Self.clientKey)","from_user_id":"\#(openId)","content":"{}"}"#, msgId: "m-3d")
            XCTAssertEqual(digg.status, .ok)
            XCTAssertEqual(digg.json["result"] as? String, "ignored")
        }
        let after = try await h.customersAndInteractions()
        XCTAssertEqual(after, [1, 2], "one customer; the message and the follow, each once")
        let id = try await CustomerStore(redis: h.redis, config: h.config).lookup(Identity(kind: .douyin, account: "dy", value: openId))
        let customer = try XCTUnwrap(id)
        let consent = try await h.redis.send("HGET", Keys.customer(customer), "consent.douyin:dy").string
        XCTAssertEqual(consent?.hasPrefix("granted|"), true, "a follow grants consent")
        let entries = try await h.redis.send("LRANGE", "cust:{\(customer)}:timeline", "0", "-1").strings.compactMap { JSONValue.parse(Array($0.utf8)) }
        let text = try XCTUnwrap(entries.first { $0.lookup("type")?.scalarText == "message.text" })
        XCTAssertEqual(text.lookup("data")?.lookup("Content")?.scalarText, "Could we book a demo?")
        XCTAssertEqual(text.lookup("channel")?.scalarText, "douyin")
        let audience = try await h.indexMembers("fidx", "account:dy")
        XCTAssertEqual(audience, [customer], "in the account's audience index")
        // The shipped keyword rule scores the Douyin text as it would a WeChat one.
        let rules = try ScoringRulesSource(path: CRMSyncTests.root.appendingPathComponent("config/scoring.yaml").path).current
        XCTAssertFalse(rules.matches(type: "message.text", payload: ["Content": "Could we book a demo?"]).isEmpty)
    }

    func test_anAccountWithoutItsSecret_isOff() throws {
        let off = try ConfigLoader(environment: [:]).load(yaml: "douyin: { accounts: [{ id: dy, clientKey: k, clientSecret: \"${UNSET:-}\" }] }")
        XCTAssertTrue(off.douyin.accounts.isEmpty)
        XCTAssertThrowsError(
            try ConfigLoader(environment: [:]).load(yaml: """
                douyin: { accounts: [{ id: plain, clientKey: k, clientSecret: s }] }
                accounts: [{ id: plain, platform: wechat, appId: wxplain000000001, token: plaintoken, mode: plain }]
                """)) { e in XCTAssertEqual((e as? ConfigError)?.path, "douyin.accounts[0].id") }
    }
}
