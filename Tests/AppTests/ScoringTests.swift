import App
import Foundation
import GatewayCore
import HummingbirdTesting
import RedisClient
import Store
import XCTest

/// Webhooks scored by the scoring worker with the shipped rules, on a real Redis.
final class ScoringTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func test_interactionsAreScoredOnce_withCapsTagsStagesAndReasons() async throws {
        let h = try Harness { $0.scoringRules = Self.root.appendingPathComponent("config/scoring.yaml").path }
        let rules = try XCTUnwrap(try ScoringService.rules(config: h.config))
        let worker = Task { await ScoringService(redis: h.redis, rules: rules, timelineCap: 500, clock: h.clock).loop() }
        defer { worker.cancel() }
        try await h.test { client in
            func send(_ xml: String) async throws {
                h.now += 1000
                let r = try await client.callback(try h.builder("demo").post(xml: xml, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false))
                XCTAssertEqual(r.status, .ok)
            }
            // subscribe at the expo (5 + 10), three pricing clicks (15 each, at most 2 a day), a demo request (20 + 1).
            try await send(SampleCallbacks.event(to: "gh", from: "oLEAD", event: "subscribe", eventKey: "qrscene_expo2026", createTime: h.nowSeconds))
            for _ in 0..<3 { try await send(SampleCallbacks.event(to: "gh", from: "oLEAD", event: "CLICK", eventKey: "MENU_PRICING", createTime: h.nowSeconds)) }
            try await send(SampleCallbacks.text(to: "gh", from: "oLEAD", content: "Could we book a demo?", msgId: "9001", createTime: h.nowSeconds))
            let lookup = try await client.get("/api/v1/customers/lookup?account=demo&openid=oLEAD")
            let id = try XCTUnwrap(lookup.json["id"] as? String)

            var hash = [String: String]()
            for _ in 0..<200 {
                hash = try await h.redis.send("HGETALL", Keys.customer(id)).dictionary
                if hash["score"] == "66.0000" { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            XCTAssertEqual(hash["score"], "66.0000", "5 + 10 + 15 + 15 (third click over the cap) + 20 + 1")
            XCTAssertEqual(hash["stage"], "MQL")
            let tags = try await h.redis.send("SMEMBERS", Keys.customerTags(id)).strings.sorted()
            XCTAssertEqual(tags, ["interest:expo", "interest:pricing", "source:expo-2026"])
            let zscore = try await h.redis.send("ZSCORE", Keys.scores, id).string
            XCTAssertEqual(zscore.flatMap(Double.init), 66)
            let mql = try await h.redis.send("SISMEMBER", Keys.fieldIndex("stage:MQL"), id).int
            XCTAssertEqual(mql, 1, "stage:MQL audiences find the lead")
            let timeline = try await h.redis.send("LRANGE", Keys.customerTimeline(id), "0", "-1").strings
            let reasons = timeline.filter { $0.contains("\"type\":\"score\"") }
            XCTAssertEqual(reasons.count, 6, "one timeline entry per rule applied: \(reasons)")
            XCTAssertTrue(reasons.contains { $0.contains("\"rule\":\"demo-request\"") && $0.contains("\"points\":20") })

            let api = try await client.get("/api/v1/customers/\(id)/score").json
            XCTAssertEqual(api["score"] as? Double, 66)
            XCTAssertEqual(api["stage"] as? String, "MQL")
            let why = (api["reasons"] as? [[String: Any]] ?? []).compactMap { ($0["data"] as? [String: Any])?["rule"] as? String }
            XCTAssertEqual(why, ["message", "demo-request", "pricing-menu", "pricing-menu", "expo-subscribe", "subscribe"], "newest first")

            // The same interaction again (a redelivered stream entry) is not scored twice.
            let store = ScoreStore(redis: h.redis)
            let first = try await store.apply(customer: id, interaction: "1-1", hits: rules.matches(type: "event.subscribe", payload: [:]), rules: rules, nowMs: h.now)
            let again = try await store.apply(customer: id, interaction: "1-1", hits: rules.matches(type: "event.subscribe", payload: [:]), rules: rules, nowMs: h.now)
            guard case .scored(_, let score, _, _, _, _) = first else { return XCTFail("\(first)") }
            XCTAssertEqual(score, 71, accuracy: 0.001)
            XCTAssertEqual(again, .duplicate)

            // Thirty days later, a message: the score has halved first (71 -> 35.5, + 1), the stage stays.
            h.now += 30 * 86_400_000
            let later = try await store.apply(customer: id, interaction: "1-2", hits: rules.matches(type: "message.text", payload: ["Content": "hi"]), rules: rules, nowMs: h.now)
            guard case .scored(_, let decayed, let stage, _, _, _) = later else { return XCTFail("\(later)") }
            XCTAssertEqual(decayed, 36.5, accuracy: 0.01)
            XCTAssertEqual(stage, "MQL")
            let preview = try await client.send(.post, "/api/v1/audiences/preview", json: #"{"expression":"stage:MQL & score>=30 & interest:pricing"}"#)
            XCTAssertEqual(preview.json["count"] as? Int, 1)
        }
    }
}
