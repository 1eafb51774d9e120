import Foundation
import GatewayCore
import XCTest

final class ScoringRulesTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func shipped() throws -> ScoringRules {
        try ScoringRules.load(yaml: try String(contentsOf: Self.root.appendingPathComponent("config/scoring.yaml"), encoding: .utf8))
    }

    func test_shippedRules_load_andMatchInteractions() throws {
        let r = try shipped()
        XCTAssertEqual(r.stages.map(\.name), ["engaged", "MQL"])
        XCTAssertEqual(r.matches(type: "event.subscribe", payload: ["EventKey": "qrscene_expo2026"]).map(\.id), ["subscribe", "expo-subscribe"])
        XCTAssertEqual(r.matches(type: "event.subscribe", payload: [:]).map(\.id), ["subscribe"])
        XCTAssertEqual(r.matches(type: "event.SCAN", payload: ["EventKey": "expo2026"]).map(\.id), ["expo-scan"])
        XCTAssertEqual(r.matches(type: "event.SCAN", payload: ["EventKey": "other"]).map(\.id), [])
        XCTAssertEqual(r.matches(type: "event.CLICK", payload: ["EventKey": "MENU_PRICING"]).first?.tags, ["interest:pricing"])
        let demo = r.matches(type: "message.text", payload: ["Content": "Can I get a DEMO?"])
        XCTAssertEqual(demo.map(\.id), ["demo-request", "message"])
        XCTAssertEqual(demo.first?.qualify, true)
        XCTAssertEqual(r.matches(type: "message.text", payload: ["Content": "hello"]).map(\.id), ["message"])
    }

    func test_eventConditions_tiers_andQualifyStage() throws {
        let r = try shipped()
        XCTAssertEqual(r.qualifyStage, "MQL")
        XCTAssertEqual(r.qualifyRank, 2)
        XCTAssertEqual(r.matches(type: "web.form_submit", payload: ["form": "pricing"]).map(\.id), ["pricing-form"])
        XCTAssertEqual(r.matches(type: "web.form_submit", payload: ["form": "careers"]).map(\.id), [])
        XCTAssertEqual(r.matches(type: "live.watch", payload: ["minutes": "30"]).map(\.id), ["live-30min"])
        XCTAssertEqual(r.matches(type: "live.watch", payload: ["minutes": "29.5"]).map(\.id), [])
        XCTAssertEqual(r.matches(type: "live.watch", payload: ["minutes": "lots"]).map(\.id), [])
        XCTAssertEqual(r.matches(type: "email.click", payload: ["url": "https://example.com/pricing?utm=edm"]).map(\.id), ["email-click", "pricing-link"])
        XCTAssertEqual(r.matches(type: "email.click", payload: ["url": "https://example.com/blog"]).map(\.id), ["email-click"])
        XCTAssertEqual(r.matches(type: "identity.bound", payload: ["type": "phone"]).map(\.id), ["phone-bound"])
        XCTAssertEqual(r.matches(type: "identity.bound", payload: ["type": "unionid"]).map(\.id), [])
        // Tiers and stages are applied in Redis (ScoringStageTierTests); here, what the file says.
        XCTAssertEqual(r.tiers.map(\.name), ["A", "B", "C", "D"])
        let vip = try ScoringRules.load(yaml: "tiers:\n  - { name: A, tags: [vip], profile: { city: Shanghai } }\n")
        XCTAssertEqual(vip.tiers.first?.tags, ["vip"])
        XCTAssertEqual(vip.tiers.first?.profile, ["city": "Shanghai"])
        XCTAssertNil(vip.qualifyStage, "no MQL stage, no qualifyAt: only qualify rules qualify")
        XCTAssertThrowsError(try ScoringRules.load(yaml: "stages: [{ name: warm, minScore: 5 }]\nqualifyAt: hot\n")) { e in
            XCTAssertEqual((e as? ConfigError)?.path, "qualifyAt")
        }
        XCTAssertThrowsError(try ScoringRules.load(yaml: "rules:\n  - { id: x, on: web.visit, points: 1, when: { atLeast: { minutes: many } } }\n")) { e in
            XCTAssertEqual((e as? ConfigError)?.path, "rules[0].when.atLeast.minutes")
        }
    }

    func test_badRules_nameTheKey() {
        let cases: [(String, String)] = [
            ("rules: [{ id: a, on: subscribe, points: 1 }]", "rules[0].on"),
            ("rules: [{ id: a, on: event.CLICK, when: { key: K, scene: S }, points: 1 }]", "rules[0].when"),
            ("rules: [{ id: a, on: event.CLICK, when: { menu: K }, points: 1 }]", "rules[0].when.menu"),
            ("rules: [{ id: a, on: event.CLICK, points: 5000 }]", "rules[0].points"),
            ("rules: [{ id: a, on: event.CLICK, points: 1, tags: [\"stage:MQL\"] }]", "rules[0].tags[0]"),
            ("rules: [{ id: a, on: event.CLICK, points: 1 }, { id: a, on: event.VIEW, points: 1 }]", "rules[1].id"),
            ("stages: [{ name: MQL, minScore: 50 }, { name: engaged, minScore: 10 }]", "stages[1].minScore"),
            ("stages: [{ name: new, minScore: 5 }]", "stages[0].name"),
            ("halfLifeDays: -1", "halfLifeDays"),
            ("ruels: []", "ruels"),
        ]
        for (yaml, path) in cases {
            XCTAssertThrowsError(try ScoringRules.load(yaml: yaml), yaml) { error in
                XCTAssertEqual((error as? ConfigError)?.path, path, "\(yaml): \(error)")
            }
        }
    }
}
