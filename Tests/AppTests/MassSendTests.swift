import App
import FakeProviders
import Foundation
import GatewayCore
import Hummingbird
import HummingbirdTesting
import Outbound
import XCTest

/// Mass sends by WeChat tag for subscription accounts: the quota is taken before WeChat is called
/// (and given back when WeChat refuses for another reason), and MASSSENDJOBFINISH counts reach the
/// campaign's report.
final class MassSendTests: XCTestCase {
    func test_massSend_withinQuota_refusedOverIt_andTheFinishCountsReachTheCampaignReport() async throws {
        let (h, fakes) = try await Harness.connectedToWeChat { config in
            if let i = config.accounts.firstIndex(where: { $0.id == "demo" }) { config.accounts[i].massSend = MassSendQuota(period: .month, limit: 2) }
        }
        let appId = h.config.account("demo")!.appId
        try await h.test { client in
            let notPushed = try await client.send(.post, "/api/v1/accounts/demo/mass-sends", json: #"{"tag":"vip","content":{"type":"text","text":"Expo opens tomorrow"}}"#)
            XCTAssertEqual(notPushed.errorCode, "tag_not_pushed")
            // The tag as a push leaves it: on WeChat, with its id kept.
            let tagId = fakes.wechat.addTag(appId: appId, name: "vip")
            try await h.redis.send("SET", Keys.wechatTagId(account: "demo", tag: "vip"), String(tagId))
            _ = try await client.send(.post, "/api/v1/tags", json: #"{"name":"vip"}"#)
            let campaign = try await client.send(.post, "/api/v1/campaigns", json: CampaignTests.campaignJSON(audience: "vip", channels: CampaignTests.wechatThenSMS))
            let campaignId = try XCTUnwrap(campaign.json["id"] as? String, campaign.text)

            fakes.ledger.inject("wechat.mass.sendall", FakeAnswer(json: #"{"errcode":-1,"errmsg":"system error"}"#))
            let failed = try await client.send(.post, "/api/v1/accounts/demo/mass-sends", json: #"{"tag":"vip","content":{"type":"text","text":"Expo opens tomorrow"}}"#)
            XCTAssertEqual(failed.errorCode, "wechat_refused")

            let body = #"{"tag":"vip","content":{"type":"text","text":"Expo opens tomorrow"},"campaign":"\#(campaignId)"}"#
            let first = try await client.send(.post, "/api/v1/accounts/demo/mass-sends", json: body)
            XCTAssertEqual(first.status, .accepted, first.text)
            let msgId = try XCTUnwrap((first.json["massSend"] as? [String: Any])?["msgId"] as? String)
            XCTAssertEqual((first.json["quota"] as? [String: Any])?["used"] as? Int, 1, "the refused call gave its slot back")
            let delivered = try XCTUnwrap(fakes.ledger.deliveries("wechat.mass").first)
            XCTAssertEqual(delivered.to, "tag:\(tagId)")
            XCTAssertEqual(delivered.body["filter"], #"{"is_to_all":false,"tag_id":\#(tagId)}"#)
            XCTAssertEqual(delivered.body["text"], #"{"content":"Expo opens tomorrow"}"#)

            let second = try await client.send(.post, "/api/v1/accounts/demo/mass-sends", json: #"{"tag":"vip","content":{"type":"mpnews","mediaId":"NEWS_MEDIA_1"}}"#)
            XCTAssertEqual(second.status, .accepted)
            let third = try await client.send(.post, "/api/v1/accounts/demo/mass-sends", json: #"{"tag":"vip","content":{"type":"text","text":"again"}}"#)
            XCTAssertEqual(third.status, .tooManyRequests)
            XCTAssertEqual(third.errorCode, "mass_quota_spent")
            XCTAssertNotNil(third.headers[.retryAfter])
            XCTAssertEqual(fakes.ledger.calls("wechat.mass.sendall"), 3, "the third never reached WeChat")

            let bad = try await client.send(.post, "/api/v1/accounts/demo/mass-sends", json: #"{"tag":"vip","content":{"type":"video","mediaId":"x"}}"#)
            XCTAssertEqual(bad.status, .badRequest)

            // WeChat reports the job.
            let finish = SampleCallbacks.event(
                to: "gh", from: "mphelper", event: "MASSSENDJOBFINISH", createTime: h.nowSeconds,
                extra: "<MsgID>\(msgId)</MsgID><Status><![CDATA[send success]]></Status><TotalCount>100</TotalCount><FilterCount>80</FilterCount><SentCount>75</SentCount><ErrorCount>5</ErrorCount>")
            let callback = try await client.callback(try h.builder("demo").post(xml: finish, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false))
            XCTAssertEqual(callback.status, .ok)
            let list = try await client.get("/api/v1/accounts/demo/mass-sends")
            let job = (list.json["massSends"] as? [[String: Any]])?.first { $0["msgId"] as? String == msgId }
            XCTAssertEqual(job?["status"] as? String, "send success")
            XCTAssertEqual(job?["sent"] as? Int, 75)
            XCTAssertEqual((list.json["quota"] as? [String: Any])?["used"] as? Int, 2)
            let report = try await client.get("/api/v1/campaigns/\(campaignId)/report")
            let reported = (report.json["massSends"] as? [[String: Any]])?.first
            XCTAssertEqual(reported?["filtered"] as? Int, 80)
            XCTAssertEqual(reported?["errors"] as? Int, 5)
        }
        await fakes.stop()
    }
}
