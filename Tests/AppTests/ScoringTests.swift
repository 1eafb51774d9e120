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
        let rules = try XCTUnwrap(try ScoringWorker.rules(config: h.config))
        let worker = Task { await ScoringWorker(redis: h.redis, rules: rules, timelineCap: 500, clock: h.clock).loop() }
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
            let exact = try await client.send(.post, "/api/v1/audiences/preview", json: #"{"expression":"score>=66 & !score>66"}"#)
            XCTAssertEqual(exact.json["count"] as? Int, 1, "the scores index holds 66")
            let mql = try await h.redis.send("SISMEMBER", h.shard(id).key(single: Keys.fieldIndex("stage:MQL")), id).int
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

/// Decay on read: audiences, the score endpoint, customers and CRM payloads see the score as it is at
/// the moment they are read; score-based tiers follow within a refresh round.
extension ScoringTests {
    static let decayRules = """
        halfLifeDays: 30
        stages: [{ name: engaged, minScore: 10 }]
        tiers:
          - { name: hot, minScore: 50 }
          - { name: warm, minScore: 20 }
        rules:
          - { id: big, on: web.big, points: 80 }
          - { id: small, on: web.small, points: 30 }
        """

    func test_decayOnRead_inAudiencesTheScoreEndpointTiersAndCRM() async throws {
        let h = try Harness()
        let rules = try ScoringRules.load(yaml: Self.decayRules)
        let store = ScoreStore(redis: h.redis)
        let customers = CustomerStore(redis: h.redis, config: h.config)
        let a = try await customers.upsertFollower(account: "demo", openid: "o-decay-a", unionid: nil, profile: [:], nowMs: h.now).id
        let b = try await customers.upsertFollower(account: "demo", openid: "o-decay-b", unionid: nil, profile: [:], nowMs: h.now).id
        try await customers.upsertFollower(account: "demo", openid: "o-decay-none", unionid: nil, profile: [:], nowMs: h.now)
        _ = try await store.apply(customer: a, interaction: "1-1", hits: rules.matches(type: "web.big", payload: [:]), rules: rules, nowMs: h.now)
        _ = try await store.apply(customer: b, interaction: "1-2", hits: rules.matches(type: "web.small", payload: [:]), rules: rules, nowMs: h.now)

        var service = ScoringWorker(redis: h.redis, rules: rules, timelineCap: 500, clock: h.clock)
        service.tierRefreshMs = 300
        service.indexCheckMs = 50
        let worker = Task { [service] in await service.loop() }
        defer { worker.cancel() }
        // Up to 20 s: on a cluster the rebuild walks all 16,384 shards a few times (about a second in a debug build).
        @Sendable func meta() async throws -> [String: String] { try await h.redis.send("HGETALL", Keys.scoresMeta).dictionary }
        for _ in 0..<1000 where try await meta()["halfLifeMs"] != "2592000000" { try await Task.sleep(for: .milliseconds(20)) }
        let built = try await meta()
        XCTAssertEqual(built["halfLifeMs"], "2592000000", "the index is rebuilt for the rules' half-life: \(built)")

        try await h.test { client in
            func expect(_ e: String, _ ids: Set<String>, _ why: String = "", line: UInt = #line) async throws {
                let got = try await CampaignTests.preview(client, e).sample
                XCTAssertEqual(got, ids, "\(e) \(why)", line: line)
            }
            func tier(_ name: String) async throws -> Set<String> { Set(try await h.indexMembers("fidx", "tier:\(name)")) }
            try await expect("score>=50", [a])
            try await expect("score>=25", [a, b])
            let hotAtStart = try await tier("hot")
            XCTAssertEqual(hotAtStart, [a])

            // Thirty days on, nothing new: a is worth 40 and b 15 wherever they are read.
            h.now += 30 * 86_400_000
            try await expect("score>=50", [])
            try await expect("score>=39", [a])
            try await expect("score>41", [])
            try await expect("score=40", [a], "= compares the score rounded to a whole number")
            try await expect("score>=15 & score<16", [b])
            let low = try await CampaignTests.preview(client, "score<20").count
            XCTAssertEqual(low, 2, "b, and the customer with no score (0)")
            let endpoint = try await client.get("/api/v1/customers/\(a)/score").json
            XCTAssertEqual(endpoint["score"] as? Double, 40)
            let view = try await client.get("/api/v1/customers/\(b)").json
            XCTAssertEqual(view["score"] as? Double ?? 0, 15, accuracy: 0.001)
            let csv = try await client.get("/api/v1/audiences/export?expr=score%3E%3D1&fields=id,score").text
            XCTAssertEqual(Set(csv.split(separator: "\r\n").map(String.init).dropFirst()), ["\(a),40.0000", "\(b),15.0000"], csv)

            // The tiers follow at the next refresh round: a leaves hot for warm, b leaves warm.
            var hot = Set<String>(), warm = Set<String>()
            for _ in 0..<1000 {
                (hot, warm) = (try await tier("hot"), try await tier("warm"))
                if hot.isEmpty && warm == [a] { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            XCTAssertEqual(hot, [])
            XCTAssertEqual(warm, [a])
            try await expect("tier:warm", [a])
            try await expect("score>=39 & score<41", [a], "a refresh keeps the same decayed score")

            // New points on a decayed score: 40 + 30.
            _ = try await store.apply(customer: a, interaction: "1-3", hits: rules.matches(type: "web.small", payload: [:]), rules: rules, nowMs: h.now)
            try await expect("score>=69 & score<71", [a])

            // A new half-life (15 days): the index is built anew beside the live one and swapped in.
            // 15 days later a's 70 is 35, and b's 15 (refreshed at day 30) is 7.5.
            let faster = try ScoringRules.load(yaml: Self.decayRules.replacingOccurrences(of: "halfLifeDays: 30", with: "halfLifeDays: 15"))
            worker.cancel()
            let swapped = try await store.ensureIndex(halfLifeMs: Int64(faster.halfLifeDays * 86_400_000), owner: "test", chunk: 1)
            XCTAssertTrue(swapped)
            let after = try await meta()
            XCTAssertEqual(after["halfLifeMs"], "1296000000")
            XCTAssertNil(after["buildHalfLifeMs"])
            h.now += 15 * 86_400_000
            try await expect("score>=34 & score<36", [a])
            try await expect("score>=7 & score<8", [b])
        }

        // The CRM payload: the score as it is when the batch is taken (Redis' own clock).
        let realNow = Int64(Date().timeIntervalSince1970 * 1000)
        _ = try await h.redis.send("HSET", Keys.customer(b), "score", "60.0000", "scoreAt", String(realNow - 15 * 86_400_000), "qualifiedAt", "1")
        _ = try await h.redis.send("ZADD", "crm:{decaytest}:dirty", "0", b)
        guard case .batch(_, let snapshots) = try await CRMOutbox(redis: h.redis, adapter: "decaytest").take(size: 10, leaseMs: 60_000, recent: 0, token: "t")
        else { return XCTFail("no CRM batch") }
        let score = snapshots.first?.document.lookup("fields")?.lookup("score")?.scalarText.flatMap(Double.init) ?? -1
        XCTAssertEqual(score, 30, accuracy: 0.01, "60 fifteen days ago at a 15-day half-life")
    }
}

/// The rules in force are readable (operations.read) and shown on the console's system page; with no
/// rules file the API says scoring is off.
final class ScoringRulesViewTests: XCTestCase {
    func test_rulesInForce_inTheAPIAndTheConsole() async throws {
        let h = try Harness { $0.scoringRules = ScoringTests.root.appendingPathComponent("config/scoring.yaml").path }
        h.scoring = try XCTUnwrap(try ScoringWorker.source(config: h.config))
        try await h.test { client in
            let r = try await client.get("/api/v1/scoring/rules")
            XCTAssertEqual(r.status, .ok, r.text)
            XCTAssertEqual(r.json["qualifyAt"] as? String, "MQL")
            XCTAssertEqual(r.json["halfLifeDays"] as? Double, 30)
            let rules = try XCTUnwrap(r.json["rules"] as? [[String: Any]])
            let pricing = try XCTUnwrap(rules.first { $0["id"] as? String == "pricing-menu" })
            XCTAssertEqual(pricing["condition"] as? String, "key: MENU_PRICING")
            XCTAssertEqual(pricing["maxPerDay"] as? Int, 2)
            XCTAssertEqual(pricing["tags"] as? [String], ["interest:pricing"])
            XCTAssertEqual(rules.first { $0["id"] as? String == "live-30min" }?["condition"] as? String, "atLeast: { minutes: 30 }")
            XCTAssertEqual((r.json["stages"] as? [[String: Any]])?.map { $0["name"] as? String }, ["engaged", "MQL"])
            XCTAssertEqual((r.json["tiers"] as? [[String: Any]])?.count, 4)

            let ana = try await ConsoleActionTests.signIn(client, "ana", role: "analyst")
            let page = try await client.execute(uri: "/console/operations/system", method: .get, headers: [.cookie: ana.cookie])
            XCTAssertEqual(page.status, .ok)
            XCTAssertEqual(page.text.matches(of: #/data-rule="/#).count, rules.count, "every rule is a row")
            XCTAssertTrue(page.text.contains("<code>key: MENU_PRICING</code>"))
        }
        let off = try Harness()
        try await off.test { client in
            let r = try await client.get("/api/v1/scoring/rules")
            XCTAssertEqual(r.status, .notFound)
            XCTAssertEqual(r.errorCode, "scoring_disabled")
        }
    }
}
