import App
import Foundation
import GatewayCore
import HummingbirdTesting
import RedisClient
import Store
import XCTest

/// `POST /api/v1/events`, value tiers and reloading the scoring rules, on a real Redis.
final class EventsAPITests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func test_events_createFindAndMergeCustomers_onceEach_andBadBatchesStoreNothing() async throws {
        let h = try Harness()
        try await h.test { client in
            let first = try await client.send(.post, "/api/v1/events", json: """
                {"events": [
                  {"id": "form-1", "type": "web.form_submit", "identities": [{"type": "email", "value": "Ada@Example.com"}], "data": {"form": "pricing"}},
                  {"type": "web.download", "identity": {"type": "phone", "value": "+86 138 0013 8000"}, "at": "2026-09-21T10:00:00+08:00", "data": {"asset": "whitepaper"}}
                ]}
                """)
            XCTAssertEqual(first.status, .ok, first.text)
            let results = try XCTUnwrap(first.json["results"] as? [[String: Any]])
            XCTAssertEqual(results.map { $0["created"] as? Bool }, [true, true])
            let ada = try XCTUnwrap(results[0]["customer"] as? String)
            let phone = try XCTUnwrap(results[1]["customer"] as? String)
            XCTAssertNotEqual(ada, phone)

            // The same event again is recorded once; an event naming both identities, the phone verified, merges the two.
            let second = try await client.send(.post, "/api/v1/events", json: """
                {"events": [
                  {"id": "form-1", "type": "web.form_submit", "identities": [{"type": "email", "value": "ada@example.com"}], "data": {"form": "pricing"}},
                  {"type": "event_app.checkin", "identities": [{"type": "email", "value": "ada@example.com"}, {"type": "phone", "value": "+8613800138000", "verified": true}], "data": {"booth": 12}}
                ]}
                """)
            XCTAssertEqual(second.json["recorded"] as? Int, 1)
            XCTAssertEqual(second.json["duplicates"] as? Int, 1)
            let survivor = try XCTUnwrap((second.json["results"] as? [[String: Any]])?[1]["customer"] as? String)
            XCTAssertTrue([ada, phone].contains(survivor))
            let merged = survivor == ada ? phone : ada
            let redirect = try await h.redis.send("HGET", Keys.customer(merged), "mergedInto").string
            XCTAssertEqual(redirect, survivor)
            let timeline = try await h.redis.send("LRANGE", Keys.customerTimeline(survivor), "0", "-1").strings
            XCTAssertEqual(timeline.filter { $0.contains("\"type\":\"web.") || $0.contains("\"type\":\"event_app.") }.count, 3, "form, download, check-in")
            XCTAssertTrue(timeline.contains { $0.contains("\"at\":1789956000000") }, "the download kept its own time")
            let apiTypes = try await h.inboundEntries().filter { $0["source"] == "api" }.compactMap { $0["type"] }
            XCTAssertEqual(apiTypes, ["web.form_submit", "web.download", "event_app.checkin"], "each event once on stream:inbound, for scoring")

            // One bad event refuses the whole batch, naming it; nothing is stored.
            let before = try await h.dbSize()
            let streamBefore = try await h.inboundLength()
            for (body, fragment) in [
                (#"{"events":[{"type":"web.visit","identity":{"type":"email","value":"x@y.io"}},{"type":"message.text","identity":{"type":"email","value":"x@y.io"}}]}"#, "events[1].type"),
                (#"{"events":[{"type":"web.visit","identity":{"type":"phone","value":"12345"}}]}"#, "events[0].identities[0]"),
                (#"{"events":[{"type":"web.visit"}]}"#, "events[0].give identities"),
                (#"{"events":[{"type":"web.visit","customer":"01KZZZZZZZZZZZZZZZZZZZZZZZ","data":{"nested":{"a":1}}}]}"#, "events[0].data"),
                (#"{"events":[{"type":"web.visit","customer":"01KZZZZZZZZZZZZZZZZZZZZZZZ","at":"2099-01-01T00:00:00Z"}]}"#, "events[0].at"),
                (#"{"events":[]}"#, "1 to 1000"),
            ] {
                let r = try await client.send(.post, "/api/v1/events", json: body)
                XCTAssertEqual(r.status, .badRequest, body)
                let message = ((r.json["error"] as? [String: Any])?["message"] as? String) ?? ""
                XCTAssertTrue(message.contains(fragment), "\(message) should name \(fragment)")
            }
            let tooMany = "{\"events\":[" + Array(repeating: #"{"type":"web.visit","customer":"01KZZZZZZZZZZZZZZZZZZZZZZZ"}"#, count: 1001).joined(separator: ",") + "]}"
            let big = try await client.send(.post, "/api/v1/events", json: tooMany)
            XCTAssertEqual(big.status, .badRequest)
            let after = try await h.dbSize()
            let streamAfter = try await h.inboundLength()
            XCTAssertEqual(after, before)
            XCTAssertEqual(streamAfter, streamBefore)
        }
    }

    func test_events_areScoredByTheShippedRules_intoTiersAndQualification() async throws {
        let path = Self.root.appendingPathComponent("config/scoring.yaml").path
        let h = try Harness { $0.scoringRules = path }
        let source = try XCTUnwrap(try ScoringWorker.source(config: h.config))
        let worker = Task { await ScoringWorker(redis: h.redis, source: source, timelineCap: 500, clock: h.clock).loop() }
        defer { worker.cancel() }
        try await h.test { client in
            let r = try await client.send(.post, "/api/v1/events", json: """
                {"events": [
                  {"type": "live.watch", "identity": {"type": "email", "value": "viewer@example.com"}, "data": {"minutes": 45}},
                  {"type": "live.watch", "identity": {"type": "email", "value": "skimmer@example.com"}, "data": {"minutes": 10}},
                  {"type": "web.form_submit", "identity": {"type": "email", "value": "buyer@example.com"}, "data": {"form": "pricing"}},
                  {"type": "web.form_submit", "identity": {"type": "email", "value": "other@example.com"}, "data": {"form": "careers"}}
                ]}
                """)
            let ids = try XCTUnwrap((r.json["results"] as? [[String: Any]])?.compactMap { $0["customer"] as? String })
            XCTAssertEqual(ids.count, 4)
            // On a cluster the customers' interactions are in different partitions of stream:inbound,
            // scored in no set order: wait for both.
            var buyer = [String: String](), viewer = [String: String]()
            for _ in 0..<200 {
                buyer = try await h.redis.send("HGETALL", Keys.customer(ids[2])).dictionary
                viewer = try await h.redis.send("HGETALL", Keys.customer(ids[0])).dictionary
                if buyer["score"] != nil, viewer["score"] != nil { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            XCTAssertEqual(viewer["score"], "15.0000", "45 minutes watched: live-30min")
            XCTAssertEqual(viewer["tier"], "D")
            XCTAssertNil(viewer["qualifiedAt"])
            XCTAssertEqual(buyer["score"], "30.0000", "the pricing form")
            XCTAssertEqual(buyer["tier"], "C")
            XCTAssertNotNil(buyer["qualifiedAt"], "the pricing-form rule qualifies")
            let tags = try await h.redis.send("SMEMBERS", Keys.customerTags(ids[2])).strings
            XCTAssertEqual(tags, ["interest:pricing"])
            let unscored = try await h.redis.send("HMGET", Keys.customer(ids[1]), "score", "tier").array ?? []
            XCTAssertTrue(unscored.allSatisfy(\.isNull), "10 minutes and a careers form score nothing")
            let crm = try await h.redis.send("XRANGE", Keys.crmStream, "-", "+").array ?? []
            XCTAssertEqual(crm.compactMap { $0.array?.last?.dictionary["customer"] }, [ids[2]], "only the qualified lead goes to the CRM")
            let preview = try await client.send(.post, "/api/v1/audiences/preview", json: #"{"expression":"tier:C | tier:D"}"#)
            XCTAssertEqual(preview.json["count"] as? Int, 2)
        }
    }

    func test_scoringRulesReload_withoutRestart_keepsTheOldRulesWhenTheFileIsBad() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rules-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("scoring.yaml")
        @Sendable func write(_ text: String, modified: Date) throws {
            try text.write(to: file, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.modificationDate: modified], ofItemAtPath: file.path)
        }
        try write("rules:\n  - { id: dl, on: web.download, points: 5 }\n", modified: Date(timeIntervalSince1970: 1_700_000_000))
        let h = try Harness { $0.scoringRules = file.path }
        let source = try XCTUnwrap(try ScoringWorker.source(config: h.config))
        h.scoring = source
        try await h.test { client in
            try write("rules:\n  - { id: dl, on: web.download, points: fifty }\n", modified: Date(timeIntervalSince1970: 1_700_000_100))
            let bad = try await client.send(.post, "/api/v1/scoring/reload", json: "{}")
            XCTAssertEqual(bad.status, .badRequest)
            XCTAssertEqual(bad.errorCode, "invalid_rules")
            XCTAssertTrue(bad.text.contains("rules[0].points"), bad.text)
            XCTAssertEqual(source.current.rules.first?.points, 5, "the rules in force stay")

            try write("rules:\n  - { id: dl, on: web.download, points: 50 }\n", modified: Date(timeIntervalSince1970: 1_700_000_200))
            let ok = try await client.send(.post, "/api/v1/scoring/reload", json: "{}")
            XCTAssertEqual(ok.status, .ok, ok.text)
            XCTAssertEqual(ok.json["rules"] as? Int, 1)
            XCTAssertEqual(source.current.rules.first?.points, 50)
        }
        // Another process notices the edit by the file's time, without the API.
        try write("rules:\n  - { id: dl, on: web.download, points: 7 }\n", modified: Date(timeIntervalSince1970: 1_700_000_300))
        XCTAssertTrue(source.reloadIfChanged())
        XCTAssertFalse(source.reloadIfChanged(), "once per edit")
        XCTAssertEqual(source.current.rules.first?.points, 7)
        _ = h
    }
}
