import App
import Foundation
import GatewayCore
import Hummingbird
import HummingbirdTesting
import Outbound
import XCTest

final class AdminAPITests: XCTestCase {
    func test_noTokenConfigured_refusesEveryAdminCall() async throws {
        let h = try Harness(adminToken: nil)
        try await h.test { client in
            for uri in ["/api/v1/tags", "/api/v1/customers/lookup?unionid=x"] {
                let r = try await client.get(uri, token: "anything")
                XCTAssertEqual(r.status, .forbidden)
                XCTAssertEqual(r.errorCode, "admin_disabled")
            }
        }
    }

    func test_missingOrWrongToken_is401() async throws {
        let h = try Harness()
        try await h.test { client in
            let none = try await client.get("/api/v1/tags", token: nil)
            XCTAssertEqual(none.status, .unauthorized)
            let wrong = try await client.get("/api/v1/tags", token: "test-admin-token-0123456788")
            XCTAssertEqual(wrong.status, .unauthorized)
            XCTAssertEqual(wrong.errorCode, "unauthorized")
        }
    }

    func test_tags_createBulkAddPageRemoveAndDelete() async throws {
        let h = try Harness()
        try await h.test { client in
            // Three followers.
            var ids = [String]()
            for i in 0..<3 {
                let xml = SampleCallbacks.event(to: "gh", from: "oT\(i)", event: "subscribe", createTime: h.nowSeconds)
                _ = try await client.callback(try h.builder("demo").post(xml: xml, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false))
                let found = try await client.get("/api/v1/customers/lookup?account=demo&openid=oT\(i)")
                ids.append(try XCTUnwrap(found.json["id"] as? String))
            }
            let created = try await client.send(.post, "/api/v1/tags", json: #"{"name":"vip"}"#)
            XCTAssertEqual(created.status, .created)
            let again = try await client.send(.post, "/api/v1/tags", json: #"{"name":"vip"}"#)
            XCTAssertEqual(again.status, .ok)
            let bad = try await client.send(.post, "/api/v1/tags", json: #"{"name":"a & b"}"#)
            XCTAssertEqual(bad.errorCode, "invalid_tag")

            let unknownId = "01J0000000000000000000000Z"
            let added = try await client.send(.post, "/api/v1/tags/vip/customers", json: "{\"customerIds\":[\"\(ids[0])\",\"\(ids[1])\",\"\(ids[2])\",\"\(unknownId)\"]}")
            XCTAssertEqual(added.status, .ok)
            XCTAssertEqual(added.json["added"] as? Int, 3)
            XCTAssertEqual(added.json["unknown"] as? [String], [unknownId])
            let customer = try await client.get("/api/v1/customers/\(ids[0])")
            XCTAssertEqual(customer.json["tags"] as? [String], ["vip"])

            var seen = Set<String>()
            var cursor = "0"
            repeat {
                let page = try await client.get("/api/v1/tags/vip/customers?cursor=\(cursor)&limit=1")
                XCTAssertEqual(page.status, .ok)
                seen.formUnion(page.json["customerIds"] as? [String] ?? [])
                cursor = page.json["nextCursor"] as? String ?? "0"
            } while cursor != "0"
            XCTAssertEqual(seen, Set(ids))
            // A cursor this Redis never gave (a cluster's form on a single Redis, or a bad slot) is a 400.
            let badCursor = h.redis.isCluster ? "99999-0" : "12-0"
            let refused = try await client.get("/api/v1/tags/vip/customers?cursor=\(badCursor)")
            XCTAssertEqual(refused.status, .badRequest, refused.text)
            XCTAssertEqual((refused.json["error"] as? [String: Any])?["code"] as? String, "invalid_cursor")

            let list = try await client.get("/api/v1/tags")
            let vip = (list.json["tags"] as? [[String: Any]])?.first { $0["name"] as? String == "vip" }
            XCTAssertEqual(vip?["customers"] as? Int, 3)

            let removed = try await client.send(.delete, "/api/v1/tags/vip/customers", json: "{\"customerIds\":[\"\(ids[0])\"]}")
            XCTAssertEqual(removed.json["removed"] as? Int, 1)
            XCTAssertEqual(removed.json["count"] as? Int, 2)

            let deleted = try await client.execute(uri: "/api/v1/tags/vip", method: .delete, headers: [.authorization: "Bearer \(Harness.adminToken)"])
            XCTAssertEqual(deleted.status, .ok)
            XCTAssertEqual(deleted.json["removedFromCustomers"] as? Int, 2)
            let after = try await client.get("/api/v1/customers/\(ids[1])")
            XCTAssertEqual(after.json["tags"] as? [String], [])
            let gone = try await client.get("/api/v1/tags/vip/customers")
            XCTAssertEqual(gone.status, .notFound)
        }
    }

    func test_bulkTag_acceptsTenThousandIdsAndRefusesMore() async throws {
        let h = try Harness()
        try await h.test { client in
            let ids = (0..<10_000).map { _ in ULID.make(milliseconds: 1) }
            let body = "{\"customerIds\":[" + ids.map { "\"\($0)\"" }.joined(separator: ",") + "]}"
            let r = try await client.send(.post, "/api/v1/tags/bulk/customers", json: body)
            XCTAssertEqual(r.status, .ok)
            XCTAssertEqual((r.json["unknown"] as? [String])?.count, 10_000)
            let tooMany = "{\"customerIds\":[" + (ids + [ids[0]]).map { "\"\($0)\"" }.joined(separator: ",") + "]}"
            let r2 = try await client.send(.post, "/api/v1/tags/bulk/customers", json: tooMany)
            XCTAssertEqual(r2.status, .badRequest)
        }
    }

    func test_lookupAndTimeline_badQueriesAre400_unknownIs404() async throws {
        let h = try Harness()
        try await h.test { client in
            let none = try await client.get("/api/v1/customers/lookup")
            XCTAssertEqual(none.errorCode, "missing_identity")
            let badPhone = try await client.get("/api/v1/customers/lookup?phone=123")
            XCTAssertEqual(badPhone.errorCode, "invalid_identity")
            let unknown = try await client.get("/api/v1/customers/lookup?email=nobody@example.com")
            XCTAssertEqual(unknown.status, .notFound)
            let badId = try await client.get("/api/v1/customers/nope")
            XCTAssertEqual(badId.status, .notFound)
            let badLimit = try await client.get("/api/v1/customers/01J0000000000000000000000Z/timeline?limit=0")
            XCTAssertEqual(badLimit.errorCode, "invalid_limit")
            let noSession = try await client.get("/api/v1/sessions/demo/nobody")
            XCTAssertEqual(noSession.status, .notFound)
        }
    }

    func test_redisStatus_showsTheSingleRedisWithItsKeys() async throws {
        let h = try Harness()
        try await h.redis.send("SET", "status:probe", "1")
        try await h.test { client in
            let r = try await client.get("/api/v1/redis")
            XCTAssertEqual(r.status, .ok, r.text)
            let nodes = try XCTUnwrap(r.json["nodes"] as? [[String: Any]])
            guard h.server != nil else { return XCTAssertEqual(r.json["mode"] as? String, "cluster") }
            XCTAssertEqual(r.json["mode"] as? String, "single")
            XCTAssertEqual(nodes.count, 1)
            XCTAssertEqual(nodes[0]["role"] as? String, "standalone")
            XCTAssertEqual(nodes[0]["state"] as? String, "up")
            let keys = try await h.redis.send("DBSIZE").int
            XCTAssertEqual(nodes[0]["keys"] as? Int, keys)
            XCTAssertGreaterThan(nodes[0]["usedMemoryBytes"] as? Int ?? 0, 0)
            let forbidden = try await client.get("/api/v1/redis", token: nil)
            XCTAssertEqual(forbidden.status, .unauthorized)
        }
    }

    func test_metrics_countRejectionsByReasonAndDedupHits() async throws {
        let h = try Harness()
        try await h.test { client in
            let r = try h.builder("demo").post(xml: SampleCallbacks.text(to: "g", from: "oM", content: "x", msgId: "m", createTime: h.nowSeconds), timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false)
            _ = try await client.callback(.init(pathAndQuery: r.pathAndQuery.replacingOccurrences(of: "signature=", with: "signature=0"), body: r.body))
            _ = try await client.callback(r)
            _ = try await client.callback(try h.builder("demo").post(xml: r.body, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false))
            let metrics = try await client.execute(uri: "/metrics", method: .get).text
            XCTAssertTrue(metrics.contains("scrm_webhook_rejected_total{reason=\"bad_signature\"}"), metrics)
            XCTAssertTrue(metrics.contains("scrm_webhook_dedup_hits_total"))
            XCTAssertTrue(metrics.contains("scrm_redis_roundtrip_seconds_count{node=\"127.0.0.1:\(h.server?.port ?? 0)\"}") || h.server == nil, metrics)
            let requestLines = metrics.split(separator: "\n").filter { $0.hasPrefix("hb_requests") && $0.contains("/webhooks/wechat/") }
            XCTAssertTrue(requestLines.contains { $0.contains("http_response_status_code=\"200\"") }, "requests by route and status:\n\(metrics)")
            XCTAssertTrue(requestLines.contains { $0.contains("http_response_status_code=\"403\"") }, "the forged request counted as 403")
        }
    }
}

final class RoutingTests: XCTestCase {
    func test_unknownRoute_answersJSONError() async throws {
        let h = try Harness()
        try await h.test { client in
            let r = try await client.execute(uri: "/no/such/route", method: .get)
            XCTAssertEqual(r.status, .notFound)
            XCTAssertEqual(r.errorCode, "not_found")
        }
    }
}

final class TagNameTests: XCTestCase {
    func test_nonASCIITagNames_workThroughPercentEncodedPaths() async throws {
        let h = try Harness()
        try await h.test { client in
            let xml = SampleCallbacks.event(to: "gh", from: "oCN", event: "subscribe", createTime: h.nowSeconds)
            _ = try await client.callback(try h.builder("demo").post(xml: xml, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false))
            let found = try await client.get("/api/v1/customers/lookup?account=demo&openid=oCN")
            let id = try XCTUnwrap(found.json["id"] as? String)
            let encoded = "贵宾".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let added = try await client.send(.post, "/api/v1/tags/\(encoded)/customers", json: "{\"customerIds\":[\"\(id)\"]}")
            XCTAssertEqual(added.status, .ok, added.text)
            XCTAssertEqual(added.json["name"] as? String, "贵宾")
            let customer = try await client.get("/api/v1/customers/\(id)")
            XCTAssertEqual(customer.json["tags"] as? [String], ["贵宾"])
            let page = try await client.get("/api/v1/tags/\(encoded)/customers")
            XCTAssertEqual(page.json["customerIds"] as? [String], [id])
            let bad = try await client.send(.post, "/api/v1/tags/%ZZ/customers", json: "{\"customerIds\":[\"\(id)\"]}")
            XCTAssertEqual(bad.errorCode, "invalid_tag")
        }
    }
}
