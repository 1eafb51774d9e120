import App
import FakeProviders
import Foundation
import GatewayCore
import Hummingbird
import HummingbirdTesting
import Outbound
import XCTest

/// Followers from WeChat's user API: profile + unionid after a subscribe (merging customers the
/// unionid links), and the one-off import of existing followers with progress.
final class FollowerSyncTests: XCTestCase {
    func rig() async throws -> (Harness, ProviderFakes) { try await Harness.connectedToWeChat(wechatPageSize: 100) }

    func test_subscribe_fetchesTheProfile_andTheUnionidMergesCustomers() async throws {
        let (h, fakes) = try await rig()
        fakes.wechat.addFollowers(appId: h.config.account("demo")!.appId, [("oA", "uShared"), ("oOther", nil)])
        let parts = makeOutbound(config: h.config, redis: h.redis, adapters: try loadAdapters(config: h.config, environment: h.adapterEnvironment), clock: h.clock)
        let followers = try XCTUnwrap(parts.followers)
        let enrichment = Task { await followers.runEnrichment() }
        defer { enrichment.cancel() }
        try await Task.sleep(for: .milliseconds(200))  // the group is created at the stream's end
        try await h.test { client in
            // Another customer already holds the unionid (bound through the API).
            _ = try await client.callback(
                try h.builder("demo").post(
                    xml: SampleCallbacks.event(to: "gh", from: "oOther", event: "subscribe", createTime: h.nowSeconds), timestamp: h.nowSeconds,
                    nonce: freshNonce(), encrypt: false))
            let found = try await client.get("/api/v1/customers/lookup?account=demo&openid=oOther")
            let other = try XCTUnwrap(found.json["id"] as? String)
            let bound = try await client.send(.post, "/api/v1/customers/\(other)/identities", json: #"{"type":"unionid","value":"uShared"}"#)
            XCTAssertEqual(bound.status, .ok)

            _ = try await client.callback(
                try h.builder("demo").post(
                    xml: SampleCallbacks.event(to: "gh", from: "oA", event: "subscribe", createTime: h.nowSeconds), timestamp: h.nowSeconds,
                    nonce: freshNonce(), encrypt: false))
            var ids: (String?, String?) = (nil, nil)
            for _ in 0..<100 {
                let a = try await client.get("/api/v1/customers/lookup?account=demo&openid=oA")
                let b = try await client.get("/api/v1/customers/lookup?account=demo&openid=oOther")
                ids = (a.json["id"] as? String, b.json["id"] as? String)
                if ids.0 != nil, ids.0 == ids.1 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            XCTAssertNotNil(ids.0)
            XCTAssertEqual(ids.0, ids.1, "oA's unionid links it to the customer that already held it: one customer")
            let customer = try await h.redis.send("HGET", Keys.customer(ids.0 ?? ""), "profile.language").string
            XCTAssertEqual(customer, "zh_CN", "the profile is stored")
            XCTAssertGreaterThanOrEqual(fakes.ledger.calls("wechat.user.batchget"), 1)
        }
        await fakes.stop()
    }

    func test_import_pagesThroughFollowers_showsProgress_andResumesAfterAFailure() async throws {
        let (h, fakes) = try await rig()
        let appId = h.config.account("demo")!.appId
        fakes.wechat.addFollowers(appId: appId, (0..<250).map { (openid: "oImp\($0)", unionid: $0 % 2 == 0 ? "uImp\($0)" : nil) })
        fakes.ledger.inject("wechat.user.get", FakeAnswer(json: #"{"errcode":-1,"errmsg":"system error"}"#))
        try await h.test { client in
            let notConnected = try await client.send(.post, "/api/v1/accounts/plain/followers/import", json: "")
            XCTAssertEqual(notConnected.errorCode, "account_not_connected")
            let unknown = try await client.send(.post, "/api/v1/accounts/nobody/followers/import", json: "")
            XCTAssertEqual(unknown.status, .notFound)

            func waitForEnd() async throws -> [String: Any] {
                for _ in 0..<200 {
                    let p = try await client.get("/api/v1/accounts/demo/followers/import").json
                    if p["state"] as? String != "running" { return p }
                    try await Task.sleep(for: .milliseconds(50))
                }
                return [:]
            }
            let first = try await client.send(.post, "/api/v1/accounts/demo/followers/import", json: "")
            XCTAssertEqual(first.status, .accepted)
            let failed = try await waitForEnd()
            XCTAssertEqual(failed["state"] as? String, "failed")
            XCTAssertTrue((failed["error"] as? String ?? "").contains("-1"), "the failure says why: \(failed)")

            let resumed = try await client.send(.post, "/api/v1/accounts/demo/followers/import", json: "")
            XCTAssertEqual(resumed.status, .accepted)
            let done = try await waitForEnd()
            XCTAssertEqual(done["state"] as? String, "done")
            XCTAssertEqual(done["total"] as? Int, 250)
            XCTAssertEqual(done["imported"] as? Int, 250)
            XCTAssertEqual(done["created"] as? Int, 250)
            XCTAssertEqual(done["percent"] as? Int, 100)
            XCTAssertEqual(fakes.ledger.calls("wechat.user.get"), 4, "one failed call, then 3 pages of 100")
            XCTAssertEqual(fakes.ledger.calls("wechat.user.batchget"), 3, "100 openids per profile call")
            let last = try await client.get("/api/v1/customers/lookup?account=demo&openid=oImp248")
            let id = try XCTUnwrap(last.json["id"] as? String)
            let byUnion = try await client.get("/api/v1/customers/lookup?unionid=uImp248")
            XCTAssertEqual(byUnion.json["id"] as? String, id, "imported with its unionid")
            let consent = (last.json["consent"] as? [String: Any])?["wechat:demo"] as? [String: Any]
            XCTAssertEqual(consent?["state"] as? String, "granted", "a follower is subscribed")

            // Push a tag of 120 of them to WeChat's own tags: 50 openids per call.
            var ids = [String]()
            for i in 0..<120 {
                let c = try await client.get("/api/v1/customers/lookup?account=demo&openid=oImp\(i)")
                ids.append(try XCTUnwrap(c.json["id"] as? String))
            }
            _ = try await client.send(.post, "/api/v1/tags", json: #"{"name":"vip"}"#)
            let tagged = try await client.send(.post, "/api/v1/tags/vip/customers", json: "{\"customerIds\":[" + ids.map { "\"\($0)\"" }.joined(separator: ",") + "]}")
            XCTAssertEqual(tagged.status, .ok)
            let push = try await client.send(.post, "/api/v1/accounts/demo/tags/vip/push", json: "")
            XCTAssertEqual(push.status, .accepted)
            var progress = [String: Any]()
            for _ in 0..<200 {
                progress = try await client.get("/api/v1/accounts/demo/tags/vip/push").json
                if progress["state"] as? String != "running" { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            XCTAssertEqual(progress["state"] as? String, "done", "\(progress)")
            XCTAssertEqual(progress["checked"] as? Int, 120)
            XCTAssertEqual(progress["tagged"] as? Int, 120)
            XCTAssertEqual(fakes.wechat.taggedOpenids(appId: appId, tag: "vip"), Set((0..<120).map { "oImp\($0)" }))
            XCTAssertEqual(fakes.ledger.calls("wechat.tags.batchtagging"), 3, "50 + 50 + 20")
        }
        await fakes.stop()
    }
}
