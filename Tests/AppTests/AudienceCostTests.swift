import App
import Foundation
import GatewayCore
import HummingbirdTesting
import Store
import XCTest

/// Audience expressions within a cost limit, negations evaluated with one pass over all customers.
final class AudienceCostTests: XCTestCase {
    func test_negationsAreOnePass_andCostlyExpressionsAre400() async throws {
        let h = try Harness()
        try await h.test { client in
            // Ten customers; customer i has tags t0...t(i-1).
            var ids = [String]()
            for i in 0..<10 {
                let e = try await client.send(.post, "/api/v1/events", json: #"{"events":[{"type":"web.visit","identity":{"type":"email","value":"c\#(i)@example.com"}}]}"#)
                ids.append(try XCTUnwrap((e.json["results"] as? [[String: Any]])?.first?["customer"] as? String))
            }
            for t in 0..<9 {
                _ = try await client.send(.post, "/api/v1/tags", json: #"{"name":"t\#(t)"}"#)
                let holders = ids.enumerated().filter { $0.offset > t }.map { "\"\($0.element)\"" }.joined(separator: ",")
                _ = try await client.send(.post, "/api/v1/tags/t\(t)/customers", json: #"{"customerIds":[\#(holders)]}"#)
            }
            // !t0 | ... | !t8: everyone but the one customer holding all nine.
            let expression = (0..<9).map { "!t\($0)" }.joined(separator: " | ")
            let r = try await client.send(.post, "/api/v1/audiences/preview", json: #"{"expression":"\#(expression)","sample":0}"#)
            XCTAssertEqual(r.status, .ok, r.text)
            XCTAssertEqual(r.json["count"] as? Int, 9)
            let keys = try await h.redis.send("KEYS", "tmp:aud:*").strings
            XCTAssertEqual(keys, [], "temporary sets are cleaned up")

            let costly = try await client.send(.post, "/api/v1/audiences/preview", json: #"{"expression":"(!t0 & !t1) | (!t2 & !t3) | (!t4 & !t5)"}"#)
            XCTAssertEqual(costly.status, .badRequest)
            XCTAssertEqual(costly.errorCode, "expression_too_costly")
            XCTAssertTrue(costly.text.contains("3 passes over all customers"), costly.text)
            let campaign = try await client.send(
                .post, "/api/v1/campaigns", json: #"{"name":"x","audience":"(!t0 & !t1) | (!t2 & !t3) | (!t4 & !t5)","channels":[{"channel":"sms","text":"hi"}]}"#)
            XCTAssertEqual(campaign.errorCode, "expression_too_costly", "campaigns and journeys apply the same limit")
        }
    }
}

/// Admin work on big sets runs in short steps.
final class BoundedWorkTests: XCTestCase {
    func test_deletingABigTag_runsInChunks_andClearsMergedIdsToo() async throws {
        let h = try Harness()
        let customers = CustomerStore(redis: h.redis, config: h.config)
        let rows = (0..<2500).map { CustomerStore.ImportRow(identities: [Identity(kind: .email, value: "big\($0)@example.com")]) }
        for chunk in stride(from: 0, to: rows.count, by: 500) { try await customers.importBatch(Array(rows[chunk..<chunk + 500]), nowMs: h.now) }
        let ids = try await h.indexMembers("customers")
        XCTAssertEqual(ids.count, 2500)
        guard ids.count == 2500 else { return }  // the rest indexes into them
        try await h.test { client in
            _ = try await client.send(.post, "/api/v1/tags", json: #"{"name":"big"}"#)
            for chunk in stride(from: 0, to: ids.count, by: 1000) {
                let list = ids[chunk..<min(chunk + 1000, ids.count)].map { "\"\($0)\"" }.joined(separator: ",")
                _ = try await client.send(.post, "/api/v1/tags/big/customers", json: #"{"customerIds":[\#(list)]}"#)
            }
            // An id that no longer leads anywhere (as a merged customer's would) is in the set too.
            let gone = "01ZZZZZZZZZZZZZZZZZZZZZZZZ"
            _ = try await h.redis.send("SADD", h.shard(gone).key(single: Keys.tag("big")), gone)
            let deleted = try await client.execute(uri: "/api/v1/tags/big", method: .delete, headers: [.authorization: "Bearer \(Harness.adminToken)"])
            XCTAssertEqual(deleted.status, .ok, deleted.text)
            XCTAssertEqual(deleted.json["removedFromCustomers"] as? Int, 2500)
            let left = try await h.indexMembers("tag", "big")
            XCTAssertEqual(left, [])
            let stillTagged = try await h.redis.send("SISMEMBER", Keys.customerTags(ids[1234]), "big").int
            XCTAssertEqual(stillTagged, 0)
            let again = try await client.execute(uri: "/api/v1/tags/big", method: .delete, headers: [.authorization: "Bearer \(Harness.adminToken)"])
            XCTAssertEqual(again.status, .notFound)
        }
        let calls = try await h.redis.send("INFO", "commandstats").string ?? ""
        let picks = calls.split(whereSeparator: \.isNewline).first { $0.hasPrefix("cmdstat_srandmember:") } ?? ""
        // 1,000 + 1,000 + 501 members, then an empty pick; the second delete picks once, finding nothing.
        // (On a cluster the delete walks the shards, each a small set: the count is a single Redis's.)
        if !h.redis.isCluster { XCTAssertTrue(picks.hasPrefix("cmdstat_srandmember:calls=5,"), "the delete ran in chunks of at most 1,000: \(picks)") }
    }
}
