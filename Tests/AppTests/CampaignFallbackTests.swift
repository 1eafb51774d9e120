import FakeProviders
import Foundation
import GatewayCore
import Store
import XCTest

/// Fallback at send time: a campaign message whose recipient cannot get it on its channel (WeChat
/// 43004 unsubscribed, 40003 bad openid, Twilio 21610 opted out, consent revoked after planning) is
/// tried on the campaign's next channel under the same message id, so the recipient gets one message
/// at most. The providers are loopback fakes that refuse those addresses as the real ones do.
extension CampaignTests {
    static let wechatSMSEmail = """
        [{"channel":"wechat","account":"demo","template":"TPL-EXPO","data":{"first":"Hi","keyword1":"Expo 2026"},"link":"https://expo.example.com/w"},
         {"channel":"sms","text":"Expo 2026: https://expo.example.com/s"},
         {"channel":"email","subject":"Expo 2026","html":"<p><a href=\\"https://expo.example.com/e\\">Register</a></p>"}]
        """

    static let unsubscribed = FakeAnswer(json: #"{"errcode":43004,"errmsg":"require subscribe rid: 6f1e-0a1b"}"#)
    static let badOpenid = FakeAnswer(json: #"{"errcode":40003,"errmsg":"invalid openid rid: 6f1e-0a1c"}"#)
    static let smsStopped = FakeAnswer(
        status: 400, json: #"{"code":21610,"message":"Attempt to send to unsubscribed recipient","more_info":"https://www.twilio.com/docs/errors/21610","status":400}"#)

    func test_fallbackAtSendTime_wechatToSMSToEmail_oneMessagePerRecipient() async throws {
        let rig = try await rig()
        let ledger = rig.fakes.ledger
        // a: unsubscribed on WeChat, STOPped SMS: email. b: an openid WeChat does not know: SMS.
        // c: all fine: WeChat. d: unsubscribed and nothing else: fails. e: revoked WeChat after planning:
        // SMS straight away, since the channel is chosen when the message is made (at send time).
        let a = try await rig.customer("o-a", phone: "+8613800000301", email: "a@example.com", tags: ["vip"])
        try await rig.customer("o-b", phone: "+8613800000302", tags: ["vip"])
        try await rig.customer("o-c", phone: "+8613800000303", tags: ["vip"])
        let d = try await rig.customer("o-d", tags: ["vip"])
        try await rig.customer("o-e", phone: "+8613800000305", tags: ["vip"])
        ledger.refuse("wechat.template", to: "o-a", Self.unsubscribed)
        ledger.refuse("wechat.template", to: "o-d", Self.unsubscribed)
        ledger.refuse("wechat.template", to: "o-b", Self.badOpenid)
        ledger.refuse("twilio.messages", to: "+8613800000301", Self.smsStopped)

        try await rig.h.test { client in
            let created = try await client.send(
                .post, "/api/v1/campaigns", json: Self.campaignJSON(audience: "vip", channels: Self.wechatSMSEmail, extra: #","trackLinks":true"#))
            let id = try XCTUnwrap(created.json["id"] as? String, created.text)
            _ = try await client.send(.post, "/api/v1/campaigns/\(id)/start", json: "{}")
            // Everyone queued (a reference to WeChat first); then e unsubscribes before any sender runs.
            let planner = try rig.runPlannerOnly()
            var queued = 0
            for _ in 0..<200 where queued < 5 {
                queued = ((try await client.get("/api/v1/campaigns/\(id)").json["progress"] as? [String: Any])?["queued"] as? Int) ?? 0
                try await Task.sleep(for: .milliseconds(20))
            }
            planner.cancel()
            XCTAssertEqual(queued, 5)
            _ = try await rig.customers.recordOptOut(channel: "wechat", account: "demo", address: "o-e", state: "revoked", nowMs: rig.h.now)

            let senders = try rig.runSenders()
            defer { senders.cancel() }
            let done = try await Self.waitForState(client, id, "completed")
            let progress = try XCTUnwrap(done["progress"] as? [String: Any])
            XCTAssertEqual(progress["sent"] as? Int, 4, "\(progress)")
            XCTAssertEqual(progress["failed"] as? Int, 1)
            XCTAssertEqual(progress["fellBack"] as? Int, 3)
            XCTAssertEqual(progress["open"] as? Int, 0)

            let report = try await client.get("/api/v1/campaigns/\(id)/report").json
            XCTAssertEqual(report["fellBackTo"] as? [String: Int], ["sms": 2, "email": 1], "\(report)")
            XCTAssertEqual(report["fellBackReasons"] as? [String: Int], ["opted_out": 2, "bad_address": 1])
            XCTAssertEqual(report["failed"] as? [String: Int], ["opted_out": 1])
            let channels = try XCTUnwrap(report["channels"] as? [String: [String: Int]])
            XCTAssertEqual(channels["wechat"]?["sent"], 1)
            XCTAssertEqual(channels["wechat"]?["fellBack"], 2)
            XCTAssertEqual(channels["wechat"]?["planned"], 4, "e's message was made on SMS")
            XCTAssertEqual(channels["sms"]?["planned"], 1)
            XCTAssertEqual(channels["sms"]?["sent"], 2)
            XCTAssertEqual(channels["sms"]?["fellBack"], 1)
            XCTAssertEqual(channels["email"]?["sent"], 1)
            for ch in ["wechat", "sms", "email"] { XCTAssertEqual(channels[ch]?["open"], 0, ch) }

            // a's one message went the whole way: the same id, with the channels it left and why.
            let mail = try XCTUnwrap(ledger.deliveries("sendgrid").first)
            let messageId = try XCTUnwrap(mail.messageId)
            let message = try await client.get("/api/v1/messages/\(messageId)").json
            XCTAssertEqual(message["channel"] as? String, "email")
            XCTAssertEqual(message["state"] as? String, "sent")
            XCTAssertEqual(message["customerId"] as? String, a)
            let tried = try XCTUnwrap(message["fellBackFrom"] as? [[String: String]])
            XCTAssertEqual(tried, [["channel": "wechat", "reason": "opted_out"], ["channel": "sms", "reason": "opted_out"]])
            // The email's link is tracked under that id, and the click lands on the email's own URL.
            let html = mail.body.first { $0.key.contains("content") && $0.value.contains("/l/") }?.value ?? ""
            let path = try XCTUnwrap(html.range(of: #"/l/[A-Za-z0-9_-]+"#, options: .regularExpression).map { String(html[$0]) }, "\(mail.body)")
            let click = try await client.get(path, token: nil)
            XCTAssertEqual(click.status, .found)
            XCTAssertEqual(click.headers[.location], "https://expo.example.com/e")

            // The refusals became consent: nobody calls WeChat or Twilio for them again.
            let consentA = try await rig.h.redis.send("HMGET", Keys.customer(a), "consent.wechat:demo", "consent.sms").strings
            XCTAssertTrue(consentA[0].hasPrefix("revoked|") && consentA[1].hasPrefix("opted_out|"), "\(consentA)")
            let consentD = try await rig.h.redis.send("HGET", Keys.customer(d), "consent.wechat:demo").string ?? ""
            XCTAssertTrue(consentD.hasPrefix("revoked|"), consentD)
        }
        // Counted at the far end: one delivery per recipient, on the channel each could take.
        XCTAssertEqual(ledger.deliveries.filter { $0.provider.hasPrefix("wechat") }.map(\.to), ["o-c"])
        XCTAssertEqual(Set(ledger.deliveries("twilio").map(\.to)), ["+8613800000302", "+8613800000305"])
        XCTAssertEqual(ledger.deliveries("twilio").count, 2)
        XCTAssertEqual(ledger.deliveries("sendgrid").map(\.to), ["a@example.com"])
        XCTAssertEqual(ledger.calls("wechat.template"), 4, "e was not tried on WeChat after revoking")
        XCTAssertEqual(ledger.calls("twilio.messages"), 3)
    }
}
