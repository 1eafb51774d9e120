import Foundation
import GatewayCore
import Store
import XCTest

/// The stage and tier rules, which need the stored score and stage atomically, live only in the
/// scoring function in Redis: checked here against a real redis-server.
final class ScoringStageTierTests: XCTestCase {
    static let rules = """
        rules:
          - { id: p10, on: web.visit, points: 10 }
          - { id: p45, on: web.demo, points: 45 }
          - { id: p35, on: web.big, points: 35 }
        stages: [{ name: engaged, minScore: 10 }, { name: MQL, minScore: 50 }]
        halfLifeDays: 30
        tiers:
          - { name: A, minScore: 80, stages: [MQL] }
          - { name: B, minScore: 80 }
          - { name: C, minScore: 10 }
          - { name: D }
        """

    struct Rig {
        let h: Harness
        let store: ScoreStore
        let customers: CustomerStore
        let rules: ScoringRules

        func score(_ id: String, _ type: String, _ n: Int) async throws {
            _ = try await store.apply(customer: id, interaction: "1-\(n)", hits: rules.matches(type: type, payload: [:]), rules: rules, nowMs: h.now)
        }

        func field(_ id: String, _ name: String) async throws -> String? { try await h.redis.send("HGET", Keys.customer(id), name).string }

        func tierOf(_ id: String) async throws -> String? {
            for t in rules.tiers where try await h.redis.send("SISMEMBER", h.shard(id).key(single: Keys.fieldIndex("tier:\(t.name)")), id).int == 1 { return t.name }
            return nil
        }
    }

    func rig(_ yaml: String = rules) throws -> Rig {
        let h = try Harness()
        return Rig(h: h, store: ScoreStore(redis: h.redis), customers: CustomerStore(redis: h.redis, config: h.config), rules: try ScoringRules.load(yaml: yaml))
    }

    func test_stagesRiseWithTheScore_areNotLostToDecay_andASalesStageStays() async throws {
        let r = try rig()
        let id = try await r.customers.upsertFollower(account: "demo", openid: "o-stage", unionid: nil, profile: [:], nowMs: r.h.now).id
        try await r.score(id, "web.visit", 1)
        var stage = try await r.field(id, "stage")
        XCTAssertEqual(stage, "engaged")
        try await r.score(id, "web.demo", 2)
        stage = try await r.field(id, "stage")
        XCTAssertEqual(stage, "MQL", "55 reaches MQL")

        // Four half-lives later the score is under every threshold; the stage stays.
        r.h.now += 120 * 86_400_000
        try await r.store.refresh(customer: id, rules: r.rules, nowMs: r.h.now)
        let faded = try await r.store.current([id], nowMs: r.h.now).first ?? nil
        XCTAssertLessThan(faded ?? 99, 10)
        stage = try await r.field(id, "stage")
        XCTAssertEqual(stage, "MQL", "a faded score keeps the stage")

        // Sales moved the lead to SQL (a stage no threshold gives): points do not move it back.
        let sql = try await r.customers.upsertFollower(account: "demo", openid: "o-sql", unionid: nil, profile: [:], nowMs: r.h.now).id
        _ = try await r.h.redis.send("HSET", Keys.customer(sql), "stage", "SQL")
        try await r.score(sql, "web.demo", 3)
        try await r.score(sql, "web.big", 4)
        stage = try await r.field(sql, "stage")
        XCTAssertEqual(stage, "SQL")
    }

    func test_tiers_followScoreStageTagsAndProfile() async throws {
        let r = try rig()
        let id = try await r.customers.upsertFollower(account: "demo", openid: "o-tier", unionid: nil, profile: [:], nowMs: r.h.now).id
        var tier = try await r.tierOf(id)
        XCTAssertNil(tier, "not scored yet")
        try await r.score(id, "web.visit", 1)
        tier = try await r.tierOf(id)
        XCTAssertEqual(tier, "C")
        try await r.score(id, "web.demo", 2)
        try await r.score(id, "web.big", 3)
        tier = try await r.tierOf(id)
        XCTAssertEqual(tier, "A", "90 in MQL")

        // The same 90 short of a qualified stage (MQL at 100 here) is B.
        let high = try rig(Self.rules.replacingOccurrences(of: "{ name: MQL, minScore: 50 }", with: "{ name: MQL, minScore: 100 }"))
        let other = try await high.customers.upsertFollower(account: "demo", openid: "o-tier-b", unionid: nil, profile: [:], nowMs: high.h.now).id
        for (n, type) in ["web.visit", "web.demo", "web.big"].enumerated() { try await high.score(other, type, n + 1) }
        tier = try await high.tierOf(other)
        XCTAssertEqual(tier, "B", "A needs a qualified stage")

        // Tags and profile fields.
        let vip = try rig("rules: [{ id: v, on: web.visit, points: 1 }]\ntiers:\n  - { name: A, tags: [vip], profile: { city: Shanghai } }\n")
        let tags = TagStore(redis: vip.h.redis)
        _ = try await tags.create("vip")
        let shanghai = try await vip.customers.upsertFollower(account: "demo", openid: "o-sh", unionid: nil, profile: ["city": "Shanghai"], nowMs: vip.h.now).id
        let beijing = try await vip.customers.upsertFollower(account: "demo", openid: "o-bj", unionid: nil, profile: ["city": "Beijing"], nowMs: vip.h.now).id
        _ = try await tags.apply("vip", add: true, customerIds: [shanghai, beijing])
        try await vip.score(shanghai, "web.visit", 1)
        try await vip.score(beijing, "web.visit", 2)
        tier = try await vip.tierOf(shanghai)
        XCTAssertEqual(tier, "A")
        tier = try await vip.tierOf(beijing)
        XCTAssertNil(tier)
    }
}
