import App
import FakeProviders
import Foundation
import GatewayCore
import GatewayCrypto
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Outbound
import Store
import RedisClient
import XCTest

/// Delivery receipts: Twilio's signed status callback, SendGrid's signed Event Webhook, WeChat's
/// TEMPLATESENDJOBFINISH; each moves the message on and records opt-outs.
final class ReceiptTests: XCTestCase {
    static let keys = ECDSA.generateP256()

    func harness(_ configure: (inout GatewayConfig) -> Void = { _ in }) throws -> Harness {
        let h = try Harness { config in
            config.outbound.channels = ["wechat": "wechat-template", "sms": "twilio-sms", "email": "sendgrid-edm"]
            config.outbound.publicURL = "https://gw.example.com"
            configure(&config)
        }
        h.adapterEnvironment = [
            "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "twilio-auth-token", "TWILIO_FROM": "+15017122661", "SENDGRID_API_KEY": "SG.k",
            "SENDGRID_WEBHOOK_PUBLIC_KEY": Data(Self.keys.publicKey).base64EncodedString(),
        ]
        return h
    }

    /// A message the provider accepted with `providerId`.
    static func sent(_ h: Harness, channel: String, adapter: String, to: String, providerId: String, customer: String? = nil) async throws -> String {
        let store = MessageStore(redis: h.redis)
        let id = ULID.make(milliseconds: h.now)
        let m = OutboundMessage(
            id: id, channel: channel, adapter: adapter, lane: .bulk, idempotencyKey: "k-\(id)", customerId: customer, to: to, account: "demo",
            template: nil, subject: nil, text: "x", html: nil, link: nil, variables: "{}", createdAt: h.now)
        _ = try await store.accept(m)
        _ = try await store.claim(id, owner: "test", now: h.now)
        try await store.complete(m, providerId: providerId, entry: nil, now: h.now)
        return id
    }

    static func state(_ h: Harness, _ id: String) async throws -> OutboundMessage? { try await MessageStore(redis: h.redis).get(id) }

    func test_twilioStatusCallback_isVerified_andMovesTheMessage() async throws {
        let h = try harness()
        let delivered = try await Self.sent(h, channel: "sms", adapter: "twilio-sms", to: "+14155550100", providerId: "SM100")
        let stopped = try await Self.sent(h, channel: "sms", adapter: "twilio-sms", to: "+14155550101", providerId: "SM101")
        try await h.test { client in
            let forged = try await Self.twilioPost(client, ["MessageSid": "SM100", "MessageStatus": "delivered", "To": "+14155550100"], token: "guess")

            XCTAssertEqual(forged.status, .forbidden)
            let unchanged = try await Self.state(h, delivered)
            XCTAssertEqual(unchanged?.state, .sent, "a forged receipt changes nothing")

            let ok = try await Self.twilioPost(client, ["MessageSid": "SM100", "MessageStatus": "delivered", "To": "+14155550100", "AccountSid": "AC1"])
            XCTAssertEqual(ok.status, .ok)
            let after = try await Self.state(h, delivered)
            XCTAssertEqual(after?.state, .delivered)

            let stop = try await Self.twilioPost(client, ["MessageSid": "SM101", "MessageStatus": "undelivered", "ErrorCode": "21610", "To": "+14155550101"])
            XCTAssertEqual(stop.status, .ok)
            let failed = try await Self.state(h, stopped)
            XCTAssertEqual(failed?.state, .failed)
            XCTAssertEqual(failed?.reason, "twilio_undelivered_21610")
            let optOut = try await h.redis.send("GET", AddressSuppression(key: AddressSuppression.devKey).key(channel: "sms", address: "+14155550101")).string
            XCTAssertTrue(optOut?.hasPrefix("opted_out|") ?? false, "STOP is an SMS opt-out")

            let unknown = try await client.execute(uri: "/webhooks/receipts/nobody", method: .post, body: ByteBuffer(string: "x"))
            XCTAssertEqual(unknown.status, .notFound)
        }
    }

    func test_sendGridEvents_areVerified_andUpdateMessagesAndConsent() async throws {
        let h = try harness()
        let a = try await Self.sent(h, channel: "email", adapter: "sendgrid-edm", to: "a@example.org", providerId: "14c5d75ce93", customer: "01KCUSTOMERA0000000000000AA")
        let b = try await Self.sent(h, channel: "email", adapter: "sendgrid-edm", to: "b@example.org", providerId: "14c5d75ce94")
        let events = """
            [{"email":"a@example.org","event":"delivered","sg_message_id":"14c5d75ce93.filter0001.16648.5515E0B88.0","timestamp":1790000000},
             {"email":"b@example.org","event":"bounce","type":"bounce","reason":"550 5.1.1 no such user","scrm_message_id":"\(b)"},
             {"email":"c@example.org","event":"spamreport"},
             {"email":"d@example.org","event":"open"},
             {"email":"a@example.org","event":"open","sg_message_id":"14c5d75ce93.filter0001.16648.5515E0B88.0"},
             {"email":"a@example.org","event":"click","url":"https://example.com/pricing?utm=edm","scrm_message_id":"\(a)"}]
            """
        try await h.test { client in
            let otherKey = ECDSA.generateP256().privateKey
            let forged = try await Self.sendGridPost(client, body: events, timestamp: h.nowSeconds, key: otherKey)
            XCTAssertEqual(forged.status, .forbidden)
            let stale = try await Self.sendGridPost(client, body: events, timestamp: h.nowSeconds - 3600)
            XCTAssertEqual(stale.status, .forbidden, "an old signed batch is not replayed")
            let untouched = try await Self.state(h, a)
            XCTAssertEqual(untouched?.state, .sent)

            let ok = try await Self.sendGridPost(client, body: events, timestamp: h.nowSeconds)
            XCTAssertEqual(ok.status, .ok)
            let delivered = try await Self.state(h, a)
            XCTAssertEqual(delivered?.state, .delivered, "matched by sg_message_id's prefix")
            let bounced = try await Self.state(h, b)
            XCTAssertEqual(bounced?.state, .failed)
            XCTAssertEqual(bounced?.reason, "bounce")
            let bOpt = try await h.redis.send("GET", AddressSuppression(key: AddressSuppression.devKey).key(channel: "email", address: "b@example.org")).string
            XCTAssertTrue(bOpt?.hasPrefix("bounced|") ?? false)
            let cOpt = try await h.redis.send("GET", AddressSuppression(key: AddressSuppression.devKey).key(channel: "email", address: "c@example.org")).string
            XCTAssertTrue(cOpt?.hasPrefix("complained|") ?? false)
            let dOpt = try await h.redis.send("EXISTS", AddressSuppression(key: AddressSuppression.devKey).key(channel: "email", address: "d@example.org")).int
            XCTAssertEqual(dOpt, 0, "an open is not an opt-out")
            // Opens and clicks of a customer's message are interactions, for scoring.
            let entries = try await h.inboundEntries()
            XCTAssertEqual(entries.map { $0["type"] ?? "" }, ["email.open", "email.click"], "one each; the open of an unknown message is none")
            XCTAssertEqual(Set(entries.compactMap { $0["customer"] }), ["01KCUSTOMERA0000000000000AA"])
            let payload = JSONValue.parse(Array((entries[1]["payload"] ?? "").utf8))
            XCTAssertEqual(payload?.lookup("url")?.scalarText, "https://example.com/pricing?utm=edm", entries[1]["payload"] ?? "")
        }
    }

    func test_templateSendJobFinish_updatesTheTemplateMessage() async throws {
        let h = try harness()
        let ok = try await Self.sent(h, channel: "wechat", adapter: "wechat-template", to: "oFan1", providerId: "2553847254416343041")
        let blocked = try await Self.sent(h, channel: "wechat", adapter: "wechat-template", to: "oFan2", providerId: "2553847254416343042")
        try await h.test { client in
            for (msgId, status, from) in [("2553847254416343041", "success", "oFan1"), ("2553847254416343042", "failed:user block", "oFan2")] {
                let xml = """
                    <xml><ToUserName><![CDATA[gh_demo]]></ToUserName><FromUserName><![CDATA[\(from)]]></FromUserName>\
                    <CreateTime>\(h.nowSeconds)</CreateTime><MsgType><![CDATA[event]]></MsgType>\
                    <Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>\(msgId)</MsgID><Status><![CDATA[\(status)]]></Status></xml>
                    """
                let r = try await client.callback(try h.builder("demo").post(xml: xml, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false))
                XCTAssertEqual(r.status, .ok)
            }
            let delivered = try await Self.state(h, ok)
            XCTAssertEqual(delivered?.state, .delivered)
            let failed = try await Self.state(h, blocked)
            XCTAssertEqual(failed?.state, .failed)
            XCTAssertEqual(failed?.reason, "user_block")
        }
    }

    func test_inboundSMSReplies_STOPand退订OptOut_STARTOptsBackIn_andForgeriesChangeNothing() async throws {
        let h = try harness()
        let customers = CustomerStore(redis: h.redis, config: h.config)
        try await customers.importBatch([.init(identities: [Identity(kind: .phone, value: "+8613900000077")])], nowMs: h.now)
        let held = try await customers.lookup(Identity(kind: .phone, value: "+8613900000077"))
        let id = try XCTUnwrap(held)
        @Sendable func consent() async throws -> String? {
            guard case .found(let c) = try await customers.customer(id: id) else { return nil }
            return c.consent["sms"]?.state
        }
        try await h.test { client in
            let reply = ["From": "+8613900000077", "To": "+15017122661", "MessageSid": "SM1", "AccountSid": "AC1"]
            // A forged reply (wrong key) changes nothing.
            let forged = try await Self.twilioPost(client, reply.merging(["Body": "STOP"]) { $1 }, token: "not-the-token", path: "inbound")
            XCTAssertEqual(forged.status, .forbidden)
            let before = try await consent()
            XCTAssertNil(before)

            let td = try await Self.twilioPost(client, reply.merging(["Body": " 退订 "]) { $1 }, path: "inbound")
            XCTAssertEqual(td.status, .ok)
            XCTAssertEqual(td.headers[.contentType], "text/xml")
            XCTAssertTrue(td.text.hasPrefix("<Response><Message>您已退订"), "we confirm what Twilio does not: \(td.text)")
            let afterTD = try await consent()
            XCTAssertEqual(afterTD, "opted_out")
            let address = try await h.redis.send("EXISTS", AddressSuppression(key: AddressSuppression.devKey).key(channel: "sms", address: "+8613900000077")).int
            XCTAssertEqual(address, 1)

            let start = try await Self.twilioPost(client, reply.merging(["Body": "start"]) { $1 }, path: "inbound")
            XCTAssertEqual(start.text, "<Response/>", "Twilio confirms its own keywords")
            let afterStart = try await consent()
            XCTAssertEqual(afterStart, "granted")
            let cleared = try await h.redis.send("EXISTS", AddressSuppression(key: AddressSuppression.devKey).key(channel: "sms", address: "+8613900000077")).int
            XCTAssertEqual(cleared, 0)

            let stop = try await Self.twilioPost(client, reply.merging(["Body": "STOP"]) { $1 }, path: "inbound")
            XCTAssertEqual(stop.text, "<Response/>")
            let afterStop = try await consent()
            XCTAssertEqual(afterStop, "opted_out")
            // Any other reply is answered and changes nothing.
            let chat = try await Self.twilioPost(client, reply.merging(["Body": "What time does it open?"]) { $1 }, path: "inbound")
            XCTAssertEqual(chat.text, "<Response/>")
            let still = try await consent()
            XCTAssertEqual(still, "opted_out")
            // A captured START replayed later does not opt the number back in.
            let replayed = try await Self.twilioPost(client, reply.merging(["Body": "start"]) { $1 }, path: "inbound")
            XCTAssertEqual(replayed.errorCode, "replayed")
            let stillOut = try await consent()
            XCTAssertEqual(stillOut, "opted_out")
        }
    }

    func test_signedCallbacks_areAppliedOnce_repeatedFieldsVerify_andOversizedBodiesAreRefusedUnread() async throws {
        let h = try harness { $0.webhooks.receiptMaxBodyBytes = 4096 }
        let sms = try await Self.sent(h, channel: "sms", adapter: "twilio-sms", to: "+8613800138000", providerId: "SMreplay1")
        try await h.test { client in
            // Twilio: the same signed callback twice.
            let fields = ["MessageSid": "SMreplay1", "MessageStatus": "delivered", "AccountSid": "AC1", "To": "+8613800138000"]
            let first = try await Self.twilioPost(client, fields)
            XCTAssertEqual(first.status, .ok, first.text)
            let again = try await Self.twilioPost(client, fields)
            XCTAssertEqual(again.status, .forbidden)
            XCTAssertEqual(again.errorCode, "replayed")
            let state = try await MessageStore(redis: h.redis).get(sms)?.state
            XCTAssertEqual(state, .delivered)

            // A repeated parameter, signed as Twilio signs it (every value), verifies; collapsing it would not.
            let url = "https://gw.example.com/webhooks/receipts/twilio-sms"
            let pairs: [(name: String, value: String)] = [
                ("MessageSid", "SMreplay1"), ("MessageStatus", "read"), ("AccountSid", "AC1"), ("ErrorCode", "30008"), ("ErrorCode", "30003"),
            ]
            let signature = ReceiptFormats.twilioSignature(url: url, pairs: pairs, authToken: "twilio-auth-token")
            XCTAssertNotEqual(signature, ReceiptFormats.twilioSignature(url: url, parameters: Dictionary(pairs, uniquingKeysWith: { _, b in b }), authToken: "twilio-auth-token"))
            let body = pairs.map { "\($0.name)=\($0.value)" }.joined(separator: "&")
            let repeated = try await client.execute(
                uri: "/webhooks/receipts/twilio-sms", method: .post,
                headers: [.contentType: "application/x-www-form-urlencoded", HTTPField.Name("X-Twilio-Signature")!: signature], body: ByteBuffer(string: body))
            XCTAssertEqual(repeated.status, .ok, repeated.text)

            // SendGrid: a replayed batch is refused; a batch over the limit is refused before any signature work.
            let events = #"[{"email":"a@example.com","event":"open","sg_message_id":"none.1","timestamp":\#(h.nowSeconds)}]"#
            let sg = try await Self.sendGridPost(client, body: events, timestamp: h.nowSeconds)
            XCTAssertEqual(sg.status, .ok, sg.text)
            let sgAgain = try await Self.sendGridPost(client, body: events, timestamp: h.nowSeconds)
            XCTAssertEqual(sgAgain.errorCode, "replayed")
            let huge = "[" + String(repeating: " ", count: 5000) + "]"
            let tooBig = try await client.execute(
                uri: "/webhooks/receipts/sendgrid-edm", method: .post,
                headers: [.contentType: "application/json", HTTPField.Name("X-Twilio-Email-Event-Webhook-Signature")!: "forged"], body: ByteBuffer(string: huge))
            XCTAssertEqual(tooBig.status, .contentTooLarge, "the limit comes before the signature: 413, not 403")
        }
    }

    static func twilioPost(
        _ client: some TestClientProtocol, _ fields: [String: String], token: String = "twilio-auth-token", path: String = "receipts"
    ) async throws -> TestResponse {
        let url = "https://gw.example.com/webhooks/\(path)/twilio-sms"
        let body = fields.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0.value)" }.joined(separator: "&")
        let sig = ReceiptFormats.twilioSignature(url: url, parameters: fields, authToken: token)
        return try await client.execute(
            uri: "/webhooks/\(path)/twilio-sms", method: .post,
            headers: [.contentType: "application/x-www-form-urlencoded", HTTPField.Name("X-Twilio-Signature")!: sig], body: ByteBuffer(string: body))
    }

    static func sendGridPost(_ client: some TestClientProtocol, body: String, timestamp: Int64, key: [UInt8] = ReceiptTests.keys.privateKey) async throws
        -> TestResponse
    {
        let sig = ECDSA.signP256SHA256(privateKey: key, message: Array("\(timestamp)".utf8) + Array(body.utf8))
        return try await client.execute(
            uri: "/webhooks/receipts/sendgrid-edm", method: .post,
            headers: [
                .contentType: "application/json", HTTPField.Name("X-Twilio-Email-Event-Webhook-Signature")!: Data(sig).base64EncodedString(),
                HTTPField.Name("X-Twilio-Email-Event-Webhook-Timestamp")!: "\(timestamp)",
            ], body: ByteBuffer(string: body))
    }
}
