import FakeProviders
import Foundation
import GatewayCore
import HTTPTransport
import Outbound
import RedisClient
import Store
import TestSupport
import XCTest

/// Each shipped spec, rendered and sent through the real curl driver to a loopback fake that checks
/// the provider's request shape and credentials (Alibaba's signature included) and answers like it.
final class ProviderRoundTripTests: XCTestCase {
    struct Rig {
        let fakes: ProviderFakes
        var ledger: FakeLedger { fakes.ledger }
        var wechat: WeChatFake { fakes.wechat }
        let redis: RedisPool
        let redisServer: RedisTestServer
        let catalog: AdapterCatalog
        let sender: AdapterSender
        let transport: HTTPTransport

        func stop() async {
            await fakes.stop()
            redis.shutdown()
            transport.shutdown()
        }
    }

    func rig(twilioPerSecond: Int? = nil, smtpURL: String = "smtp://127.0.0.1:1", enabled: Set<String>) async throws -> Rig {
        let fakes = try await ProviderFakes.start(twilioPerSecond: twilioPerSecond)
        let env = fakes.environment.merging([
            "SCRM_SMTP_URL": smtpURL, "SCRM_SMTP_SECURITY": "none", "SCRM_SMTP_USER": "edm", "SCRM_SMTP_PASSWORD": "s3cret",
            "SCRM_MAIL_FROM": "news@shop.example",
        ]) { $1 }
        let catalog = try AdapterCatalog.load(directory: AdapterFixtureTests.adaptersDir, enabled: enabled, environment: env)
        let redisServer = try RedisTestServer()
        let redis = RedisPool(redisServer.configuration)
        let transport = HTTPTransport()
        let sender = AdapterSender(transport: transport, sandbox: SandboxOutbox(redis: redis, maxLen: 1000), publicURL: "https://gw", clock: { Int64(Date().timeIntervalSince1970 * 1000) })
        return Rig(fakes: fakes, redis: redis, redisServer: redisServer, catalog: catalog, sender: sender, transport: transport)
    }

    func token(_ rig: Rig) async throws -> String {
        let r = try await rig.transport.send(HTTPRequest(
            method: "POST", url: rig.fakes.baseURL + "/cgi-bin/stable_token", headers: [("Content-Type", "application/json")],
            body: Array(#"{"grant_type":"client_credential","appid":"\#(ProviderFakes.wechatAppId)","secret":"\#(ProviderFakes.wechatSecret)"}"#.utf8)))
        return try XCTUnwrap(JSONValue.parse(r.body)?.lookup("access_token")?.scalarText)
    }

    func test_wechatTemplate_isAccepted_andTokenAndQuotaErrorsAreClassified() async throws {
        let rig = try await rig(enabled: ["wechat-template"])
        let adapter = try XCTUnwrap(rig.catalog["wechat-template"])
        let payload = OutboundPayload(messageId: "m1", to: "oFollower1", account: "demo", template: "TPL1", variables: ["thing1": .string("Expo")])
        let token = try await token(rig)

        let sent = await rig.sender.attempt(payload, via: adapter, accessToken: token)
        guard case .accepted(let msgid?) = sent else { return XCTFail("\(sent)") }
        let delivered = rig.ledger.deliveries("wechat.template")
        XCTAssertEqual(delivered.map(\.to), ["oFollower1"])
        XCTAssertEqual(delivered.first?.messageId, "m1", "our id travels as client_msg_id")
        XCTAssertEqual(delivered.first?.providerId, msgid)

        let unknown = await rig.sender.attempt(payload, via: adapter, accessToken: "not-a-token")
        XCTAssertEqual(unknown, .failed(SendFailure(errorClass: .tokenExpired, code: "40001", message: "invalid credential, access_token is invalid or not latest", answer: "")).withAnswer(of: unknown))
        rig.wechat.expireTokens()
        guard case .failed(let expired) = await rig.sender.attempt(payload, via: adapter, accessToken: token) else { return XCTFail() }
        XCTAssertEqual(expired.errorClass, .tokenExpired)
        XCTAssertEqual(expired.code, "42001")

        rig.wechat.setQuota("template", 0)
        guard case .failed(let quota) = await rig.sender.attempt(payload, via: adapter, accessToken: try await self.token(rig)) else {
            return XCTFail()
        }
        XCTAssertEqual(quota.errorClass, .quota)
        XCTAssertEqual(rig.ledger.deliveries("wechat.template").count, 1, "only the first call was delivered")
        await rig.stop()
    }

    func test_twilio_acceptsTheRequest_andThrottlingIsClassified() async throws {
        let rig = try await rig(twilioPerSecond: 1, enabled: ["twilio-sms"])
        let adapter = try XCTUnwrap(rig.catalog["twilio-sms"])
        let first = await rig.sender.send(OutboundPayload(messageId: "s1", to: "+14155552671", text: "Hi & bye"), via: adapter)
        guard case .accepted(let sid?) = first else { return XCTFail("\(first)") }
        XCTAssertTrue(sid.hasPrefix("SM"))
        let delivered = try XCTUnwrap(rig.ledger.deliveries("twilio").first)
        XCTAssertEqual(delivered.body["Body"], "Hi & bye")
        XCTAssertEqual(delivered.body["StatusCallback"], "https://gw/webhooks/receipts/twilio-sms")

        // Twilio fake allows 1 per second: a second call in the same second is throttled, or lands in the next second.
        var throttled: SendFailure?
        for i in 0..<5 where throttled == nil {
            if case .failed(let f) = await rig.sender.send(OutboundPayload(messageId: "s\(i + 2)", to: "+14155552671", text: "x"), via: adapter) {
                throttled = f
            }
        }
        XCTAssertEqual(throttled?.errorClass, .throttle)
        XCTAssertEqual(throttled?.code, "20429")

        try await Task.sleep(for: .milliseconds(1100))  // out of the throttled second
        let bad = await rig.sender.send(OutboundPayload(messageId: "s9", to: "0415", text: "x"), via: adapter)
        guard case .failed(let badNumber) = bad else { return XCTFail("\(bad)") }
        XCTAssertEqual(badNumber.errorClass, .badAddress)
        await rig.stop()
    }

    func test_aliyun_signatureIsAcceptedByAnIndependentCheck() async throws {
        let rig = try await rig(enabled: ["aliyun-sms"])
        let adapter = try XCTUnwrap(rig.catalog["aliyun-sms"])
        let outcome = await rig.sender.send(
            OutboundPayload(messageId: "a1", to: "15300000001", template: "SMS_154950909", variables: ["code": .string("4821")]), via: adapter)
        guard case .accepted(let bizId?) = outcome else { return XCTFail("\(outcome)") }
        XCTAssertTrue(bizId.hasSuffix("^0"))
        let delivered = try XCTUnwrap(rig.ledger.deliveries("aliyun").first)
        XCTAssertEqual(delivered.messageId, "a1")
        XCTAssertEqual(delivered.body["TemplateParam"], #"{"code":"4821"}"#)
        XCTAssertEqual(delivered.body["SignName"], "示例商城")
        await rig.stop()
    }

    func test_sendGrid_andSMTP_deliverTheEmail() async throws {
        let sink = try SMTPTestServer(user: "edm", password: "s3cret")
        let rig = try await rig(smtpURL: sink.url, enabled: ["sendgrid-edm", "smtp-edm"])
        let payload = OutboundPayload(messageId: "e1", to: "ana@example.org", toName: "Ana", subject: "邀请函", text: "Hello", html: "<p>Hello</p>")

        let viaAPI = await rig.sender.send(payload, via: try XCTUnwrap(rig.catalog["sendgrid-edm"]), unsubscribeURL: "https://gw/u/T1")
        guard case .accepted(let id?) = viaAPI else { return XCTFail("\(viaAPI)") }
        XCTAssertEqual(rig.ledger.deliveries("sendgrid").first?.providerId, id)

        let viaSMTP = await rig.sender.send(payload, via: try XCTUnwrap(rig.catalog["smtp-edm"]), unsubscribeURL: "https://gw/u/T1")
        XCTAssertEqual(viaSMTP, .accepted(providerId: nil))
        let mail = try XCTUnwrap(sink.messages().first)
        XCTAssertEqual(mail.recipients, ["ana@example.org"])
        XCTAssertEqual(mail["subject"], "邀请函")
        XCTAssertEqual(mail["list_unsubscribe"], "<https://gw/u/T1>")
        XCTAssertEqual(mail["list_unsubscribe_post"], "List-Unsubscribe=One-Click")
        XCTAssertEqual(mail.defects, [])

        // A mailbox the server refuses at RCPT TO (550 5.1.1) is a hard bounce: a recipient reason,
        // so a campaign tries its next channel; the server refusing our login is not.
        let bounced = await rig.sender.send(
            OutboundPayload(messageId: "e2", to: "reject-ana@example.org", subject: "s", text: "t"), via: try XCTUnwrap(rig.catalog["smtp-edm"]),
            unsubscribeURL: "https://gw/u/T1")
        guard case .failed(let f) = bounced else { return XCTFail("\(bounced)") }
        XCTAssertEqual(f.errorClass, .badAddress, f.description)
        XCTAssertEqual(f.code, "smtp 550")
        XCTAssertEqual(sink.messages().count, 1)
        await rig.stop()
    }

    func test_sandbox_recordsInRedis_andSendsNothing() async throws {
        let rig = try await rig(enabled: ["sandbox-sms", "sandbox-email"])
        let sms = await rig.sender.send(OutboundPayload(messageId: "x1", to: "+14155552671", text: "code 1234"), via: try XCTUnwrap(rig.catalog["sandbox-sms"]))
        guard case .accepted(let id?) = sms else { return XCTFail("\(sms)") }
        XCTAssertTrue(id.hasPrefix("sandbox-"))
        try await Task.sleep(for: .milliseconds(5))  // stream ids in the same millisecond would tie across channels
        _ = await rig.sender.send(
            OutboundPayload(messageId: "x2", to: "a@b.example", subject: "s", text: "t"), via: try XCTUnwrap(rig.catalog["sandbox-email"]), unsubscribeURL: "https://gw/u/T")
        XCTAssertEqual(rig.ledger.deliveries.count, 0, "a sandbox reaches no provider")

        let outbox = SandboxOutbox(redis: rig.redis, maxLen: 1000)
        let all = try await outbox.list(channels: ["wechat", "sms", "email"], limit: 10)
        XCTAssertEqual(all.map(\.messageId), ["x2", "x1"], "newest first across channels")
        let onlySMS = try await outbox.list(channels: ["sms"], limit: 10)
        XCTAssertEqual(onlySMS.map(\.renders), ["twilio-sms"])
        XCTAssertTrue(onlySMS[0].request.contains("Body=code%201234"), onlySMS[0].request)
        await rig.stop()
    }
}

extension SendOutcome {
    /// The same failure with `other`'s answer text, so a test can compare everything but the raw body.
    func withAnswer(of other: SendOutcome) -> SendOutcome {
        guard case .failed(let f) = self, case .failed(let o) = other else { return self }
        return .failed(SendFailure(errorClass: f.errorClass, code: f.code, message: f.message, retryAfterMs: f.retryAfterMs, answer: o.answer))
    }
}
