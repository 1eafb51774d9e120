import Foundation
import GatewayCore
import NIOConcurrencyHelpers
import RedisClient
import Store
import XCTest

/// Webhooks stored as a chain of single-slot steps (`webhooks.ingestInSteps`, what a Redis Cluster
/// always does), here on a single Redis so that a cut between steps can be staged exactly.
final class IngestStepsTests: XCTestCase {
    func test_aChainCutOffBeforeItsLastStep_isCompletedByTheRetry_andChangesTheCustomerOnce() async throws {
        let h = try Harness { $0.webhooks.ingestInSteps = true }
        let sub = SampleCallbacks.event(to: "gh", from: "oCUT", event: "subscribe", eventKey: "qrscene_expo2026", createTime: h.nowSeconds)
        let request = try h.builder("demo").post(xml: sub, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false)
        try await h.test { client in
            let first = try await client.callback(request).status
            XCTAssertEqual(first, .ok)
            // Stage a chain cut off before its last step: the sender's session and dedup key were
            // never written (ingest_finish is one atomic call: all of it or none).
            let dedup = try await h.keys("dedup:*")
            XCTAssertEqual(dedup.count, 1, "one dedup key, in the sender's slot: \(dedup)")
            XCTAssertTrue(dedup[0].hasPrefix("dedup:{demo:oCUT}:"), dedup[0])
            try await h.redis.send(
                "DEL", dedup[0], Keys.session(account: "demo", openid: "oCUT"), Keys.sessionMessages(account: "demo", openid: "oCUT"),
                Keys.sessionDedup(account: "demo", openid: "oCUT"))

            // WeChat's retry: the very same request (same nonce and body) runs the chain again.
            let retry = try await client.callback(request)
            XCTAssertEqual(retry.status, .ok)
            XCTAssertEqual(retry.text, "success")
            let c = try await client.get("/api/v1/customers/lookup?account=demo&openid=oCUT").json
            let id = try XCTUnwrap(c["id"] as? String)
            XCTAssertEqual(c["tags"] as? [String], ["source:expo-2026"])
            let timeline = try await client.get("/api/v1/customers/\(id)/timeline").json["items"] as? [Any]
            XCTAssertEqual(timeline?.count, 1, "the customer changed once")
            let session = try await client.get("/api/v1/sessions/demo/oCUT").json
            XCTAssertEqual((session["messages"] as? [Any])?.count, 1)
            XCTAssertEqual(session["customerId"] as? String, id)

            // A retry with a new nonce is a duplicate now: the chain finished.
            let again = try h.builder("demo").post(xml: sub, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false)
            let duplicate = try await client.callback(again).status
            XCTAssertEqual(duplicate, .ok)
        }
        let appended = try await h.inboundLength()
        XCTAssertEqual(appended, 1, "the interaction appended once")
        let stats = try await h.redis.send("HGETALL", Keys.qrSceneStats(account: "demo")).dictionary
        XCTAssertEqual(stats["expo2026\u{1F}scans"], "1", "counted once: \(stats)")
        XCTAssertEqual(stats["expo2026\u{1F}subscribes"], "1")
        let tagNames = try await h.redis.send("SMEMBERS", Keys.tags).strings
        XCTAssertEqual(tagNames, ["source:expo-2026"])
        let dedupKeys = try await h.keys("dedup:*").count
        XCTAssertEqual(dedupKeys, 1, "stored now")
    }

    func test_theCallbacksACustomerRecords_areKeptForTheDedupWindowOnly() async throws {
        let h = try Harness { $0.webhooks.ingestInSteps = true }
        try await h.test { client in
            for n in 0..<3 {
                let msg = SampleCallbacks.text(to: "gh", from: "oCHATTY", content: "m\(n)", msgId: "880\(n)", createTime: h.nowSeconds)
                let status = try await client.callback(try h.builder("plain").post(xml: msg, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false)).status
                XCTAssertEqual(status, .ok)
                h.now += Int64(h.config.webhooks.dedupTTLSeconds) * 1000 / 2 + 1000
            }
            let id = try await client.get("/api/v1/customers/lookup?account=plain&openid=oCHATTY").json["id"] as? String ?? ""
            let recorded = try await h.redis.send("ZRANGE", Keys.customerIngested(id), "0", "-1").strings
            XCTAssertEqual(recorded.count, 2, "the first fell out of the window when the third came: \(recorded)")
            let timeline = try await client.get("/api/v1/customers/\(id)/timeline").json["items"] as? [Any]
            XCTAssertEqual(timeline?.count, 3)
        }
    }

    func test_aCustomerMergedAway_isFollowedToItsSurvivor() async throws {
        let h = try Harness { $0.webhooks.ingestInSteps = true }
        try await h.test { client in
            for openid in ["oA", "oB"] {
                let msg = SampleCallbacks.text(to: "gh", from: openid, content: "hi", msgId: "7\(openid.count)\(openid.utf8.last!)", createTime: h.nowSeconds)
                let status = try await client.callback(try h.builder("plain").post(xml: msg, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false)).status
                XCTAssertEqual(status, .ok)
            }
            func holder(_ openid: String) async throws -> String? {
                try await client.get("/api/v1/customers/lookup?account=plain&openid=\(openid)").json["id"] as? String
            }
            let a = try await holder("oA") ?? "", b = try await holder("oB") ?? ""
            XCTAssertFalse(a.isEmpty || b.isEmpty)
            // One phone on both: the two are merged (through the admin API, one call on a single Redis).
            for id in [a, b] {
                let r = try await client.send(.post, "/api/v1/customers/\(id)/identities", json: #"{"type":"phone","value":"+8613800138000"}"#)
                XCTAssertTrue([200, 201].contains(Int(r.status.code)), r.text)
            }
            let survivor = try await holder("oB") ?? ""
            let survivorOfA = try await holder("oA")
            XCTAssertEqual(survivor, survivorOfA, "merged")
            let merged = survivor == a ? b : a
            // The merged one's openid index may still name it: the customer step answers `moved`.
            try await h.redis.send("SET", Keys.identity(Identity(kind: .openid, account: "plain", value: "oA")), merged)
            let msg = SampleCallbacks.text(to: "gh", from: "oA", content: "again", msgId: "7999", createTime: h.nowSeconds)
            let status = try await client.callback(try h.builder("plain").post(xml: msg, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false)).status
            XCTAssertEqual(status, .ok)
            let timeline = try await client.get("/api/v1/customers/\(survivor)/timeline").json["items"] as? [[String: Any]] ?? []
            XCTAssertEqual(timeline.first?["type"] as? String, "message.text")
            XCTAssertEqual((timeline.first?["data"] as? [String: String])?["Content"], "again", "stored on the survivor")
            let stub = try await h.redis.send("HGET", Keys.customer(merged), "createdAt").string
            XCTAssertEqual(stub, nil, "the stub stays a stub")
        }
    }

    func test_aMergeCutOffBetweenItsSteps_isFinishedOnceByTheSweeper() async throws {
        let h = try Harness { $0.webhooks.ingestInSteps = true }
        let found = NIOLockedValueBox([String: String]())
        try await h.test { client in
            for (openid, tag) in [("oOLD", "qrscene_expo2026"), ("oNEW", "")] {
                let sub = SampleCallbacks.event(to: "gh", from: openid, event: "subscribe", eventKey: tag, createTime: h.nowSeconds)
                let status = try await client.callback(try h.builder("demo").post(xml: sub, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false)).status
                XCTAssertEqual(status, .ok)
                let id = try await client.get("/api/v1/customers/lookup?account=demo&openid=\(openid)").json["id"] as? String
                found.withLockedValue { $0[openid] = id }
                h.now += 1000
            }
        }
        let ids = found.withLockedValue { $0 }
        let old = try XCTUnwrap(ids["oOLD"]), new = try XCTUnwrap(ids["oNEW"])
        // A process began merging the newer into the older and stopped after the survivor absorbed it.
        let begun = try await h.redis.fcall(StoreFunctions.library, "merge_begin", keys: [Keys.customer(new)], args: [new, old]).array ?? []
        let data = try XCTUnwrap(begun.count > 1 ? begun[1].string : nil)
        _ = try await h.redis.fcall(
            StoreFunctions.library, "merge_absorb", keys: [Keys.customer(old)], args: [h.shard(old).argument, h.config.customers.attributes.indexSchema.flatMap { [$0.0, $0.1] }.joined(separator: ","), old, new, data, String(h.now), "500", "0", ""])
        try await h.redis.send("ZADD", Keys.pendingMerges, String(h.now), "\(new)|\(old)")

        let store = CustomerStore(redis: h.redis, config: h.config)
        let early = try await store.finishPendingMerges(nowMs: h.now + 1000)
        XCTAssertEqual(early, 0, "a merge begun a moment ago may still be running")
        let finished = try await store.finishPendingMerges(nowMs: h.now + 120_000)
        XCTAssertEqual(finished, 1)
        let again = try await store.finishPendingMerges(nowMs: h.now + 240_000)
        XCTAssertEqual(again, 0)

        let stub = try await h.redis.send("HGETALL", Keys.customer(new)).dictionary
        XCTAssertEqual(stub["mergedInto"], old, "\(stub)")
        XCTAssertNil(stub["createdAt"])
        let owner = try await h.redis.send("GET", Keys.identity(Identity(kind: .openid, account: "demo", value: "oNEW"))).string
        XCTAssertEqual(owner, old, "the loser's identities point at the survivor")
        let timeline = try await h.redis.send("LRANGE", Keys.customerTimeline(old), "0", "-1").strings
        XCTAssertEqual(timeline.filter { $0.contains("\"event.subscribe\"") }.count, 2, "both subscribes, once each: \(timeline)")
        XCTAssertEqual(timeline.filter { $0.contains("customer.merged") }.count, 1)
        let live = try await h.indexMembers("customers")
        XCTAssertEqual(live, [old])
        let consented = try await h.indexMembers("fidx", "consent:wechat:demo")
        XCTAssertEqual(consented, [old])
        let merges = try await h.inboundEntries().filter { $0["type"] == "customer.merged" }
        XCTAssertEqual(merges.count, 1, "customer.merged appended once")
        let pending = try await h.redis.send("ZCARD", Keys.pendingMerges).int
        XCTAssertEqual(pending, 0)
    }
}
