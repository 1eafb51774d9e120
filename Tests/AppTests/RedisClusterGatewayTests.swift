import Foundation
import GatewayCore
import NIOConcurrencyHelpers
import RedisClient
import TestSupport
import XCTest

/// The gateway's view of a Redis Cluster: `/readyz` per master through a failover, and
/// `GET /api/v1/redis` (what `scrmctl redis status` and the console show); webhooks stored on it.
final class RedisClusterGatewayTests: XCTestCase {
    func test_webhooksOnACluster_storeEachCustomerWithItsIndexEntriesInItsOwnSlot() async throws {
        let cluster = try await RedisTestCluster.start(masters: 3, replicas: 0)
        let h = try Harness(redis: cluster.pool())
        let openids = (0..<30).map { "oCLUSTER\($0)" }
        let stored = NIOLockedValueBox<[String]>([])
        try await h.test { client in
            for openid in openids {
                let sub = SampleCallbacks.event(to: "gh", from: openid, event: "subscribe", eventKey: "qrscene_expo2026", createTime: h.nowSeconds)
                let r = try await client.callback(try h.builder("demo").post(xml: sub, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false))
                XCTAssertEqual(r.status, .ok, r.text)
                let c = try await client.get("/api/v1/customers/lookup?account=demo&openid=\(openid)").json
                XCTAssertEqual(c["tags"] as? [String], ["source:expo-2026"], openid)
                let id = try XCTUnwrap(c["id"] as? String)
                stored.withLockedValue { $0.append(id) }
                // The same callback again (WeChat's retry with a new nonce): answered, stored once.
                let again = try await client.callback(try h.builder("demo").post(xml: sub, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false))
                XCTAssertEqual(again.status, .ok)
            }
            // Readers sum the shards: the tag's count, an audience preview and its sample, and pages
            // of the tag's customers that walk the shards.
            let tags = try await client.get("/api/v1/tags").json["tags"] as? [[String: Any]] ?? []
            XCTAssertEqual(tags.first { $0["name"] as? String == "source:expo-2026" }?["customers"] as? Int, 30, "\(tags)")
            let preview = try await client.send(.post, "/api/v1/audiences/preview", json: #"{"expression":"source:expo-2026 & !vip","sample":5}"#)
            XCTAssertEqual(preview.json["count"] as? Int, 30, preview.text)
            let sample = preview.json["sample"] as? [String] ?? []
            XCTAssertEqual(Set(sample).count, 5)
            XCTAssertTrue(Set(sample).isSubset(of: Set(stored.withLockedValue { $0 })))
            var paged = [String]()
            var cursor: String? = "0"
            var pages = 0
            while let c = cursor, pages < 20 {
                let page = try await client.get("/api/v1/tags/source:expo-2026/customers?limit=7&cursor=\(c)").json
                XCTAssertEqual(page["count"] as? Int, 30)
                paged += page["customerIds"] as? [String] ?? []
                cursor = page["nextCursor"] as? String
                pages += 1
            }
            XCTAssertEqual(Set(paged), Set(stored.withLockedValue { $0 }), "every tagged customer once over \(pages) pages")
            XCTAssertEqual(paged.count, 30)
        }
        let ids = stored.withLockedValue { $0 }
        XCTAssertEqual(Set(ids).count, 30)
        for id in ids {
            // The customer's index entries sit in its shard: the slot of its own keys.
            let shard = IndexShard(customer: id)
            let r = try await h.redis.pipelineChecked([
                ["SISMEMBER", shard.key("fidx", "all"), id], ["SISMEMBER", shard.key("fidx", "consent:wechat:demo"), id],
                ["SISMEMBER", shard.key("tag", "source:expo-2026"), id], ["ZSCORE", shard.key("customers"), id],
            ])
            XCTAssertEqual(r.prefix(3).map(\.int), [1, 1, 1], id)
            XCTAssertEqual(r[3].string, String(h.now), "in the shard's customers by creation time")
        }
        let interactions = try await h.inboundLength()
        XCTAssertEqual(interactions, 30, "each subscribe once, its retry not again")
        let stats = try await h.redis.send("HGETALL", Keys.qrSceneStats(account: "demo")).dictionary
        XCTAssertEqual(stats["expo2026\u{1F}subscribes"], "30")
        // The customers spread over the three masters.
        let perMaster = try await h.redis.onEachMaster([["DBSIZE"]]).map { $0.1[0].int ?? 0 }
        XCTAssertEqual(perMaster.count, 3)
        XCTAssertTrue(perMaster.allSatisfy { $0 > 20 }, "keys on every master: \(perMaster)")
    }

    func test_readyzAndRedisStatus_followAMasterKilledAndItsReplicaPromoted() async throws {
        let cluster = try await RedisTestCluster.start(masters: 3, replicas: 1)
        let h = try Harness(redis: cluster.pool())
        // Keys spread over the masters by slot.
        _ = try await h.redis.pipelineChecked((0..<3000).map { ["SET", "balance:\($0)", "x"] })
        try await h.test { client in
            let ready = try await client.get("/readyz", token: nil)
            XCTAssertEqual(ready.status, .ok, ready.text)
            XCTAssertEqual(ready.json["masters"] as? [String], ["up", "up", "up"])
            XCTAssertFalse(ready.text.contains("127.0.0.1"), "the public probe names no address: \(ready.text)")

            let status = try await client.get("/api/v1/redis")
            XCTAssertEqual(status.status, .ok, status.text)
            XCTAssertEqual(status.json["mode"] as? String, "cluster")
            XCTAssertEqual(status.json["slotsCovered"] as? Int, 16_384)
            let nodes = try XCTUnwrap(status.json["nodes"] as? [[String: Any]])
            XCTAssertEqual(nodes.map { $0["role"] as? String }, ["master", "master", "master", "replica", "replica", "replica"])
            let masterKeys = nodes.prefix(3).compactMap { $0["keys"] as? Int }
            XCTAssertEqual(masterKeys.reduce(0, +), 3000, "every key on exactly one master")
            let imbalance = try XCTUnwrap(status.json["keyImbalancePercent"] as? Double)
            XCTAssertLessThan(imbalance, 15, "3,000 keys spread evenly: \(masterKeys)")
            let masters = nodes.prefix(3).compactMap { $0["endpoint"] as? String }
            XCTAssertEqual(Set(nodes.suffix(3).compactMap { $0["master"] as? String }), Set(masters), "each replica names its master")

            // A master dies: readiness says which (by position) until its replica takes over.
            let victim = masters[1]
            try XCTUnwrap(cluster.server(victim)).crash()
            var sawDown = false
            var recovered = false
            for _ in 0..<200 {
                let r = try await client.get("/readyz", token: nil)
                if r.status == .serviceUnavailable {
                    XCTAssertEqual(r.json["redis"] as? String, "degraded", r.text)
                    if (r.json["masters"] as? [String])?[1] == "down" { sawDown = true }
                } else if r.status == .ok, sawDown {
                    recovered = true
                    break
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            XCTAssertTrue(sawDown, "readiness showed the dead master")
            XCTAssertTrue(recovered, "ready again once the replica was promoted")
            let after = try await client.get("/api/v1/redis")
            let afterNodes = try XCTUnwrap(after.json["nodes"] as? [[String: Any]])
            XCTAssertFalse(afterNodes.contains { $0["role"] as? String == "master" && $0["endpoint"] as? String == victim }, "the dead node serves no slots")
            XCTAssertEqual(after.json["slotsCovered"] as? Int, 16_384)
        }
    }
}
