import Foundation
import GatewayCore
@testable import Store
import XCTest

/// How the audience script evaluates sorted-set ranges (scores, numbers, times) on a real Redis: a
/// range alone is counted with ZCOUNT and sampled by rank, a range meeting a much smaller set checks
/// that set's members, a small range is read as a set, and anything else reads the range by rank.
/// Every path must give the same answer as the plain set arithmetic, computed here by hand. On a
/// cluster each member goes to its own customer's shard, so the per-shard answers are merged too.
final class AudiencePlanTests: XCTestCase {
    func test_rangePlans_giveTheSameAnswersAsSetArithmetic() async throws {
        let h = try Harness()
        let scored = (0..<200).map { String(format: "c%03d", $0) }
        let unscored = (0..<50).map { String(format: "u%03d", $0) }
        try await h.indexAdd(Keys.scores, scored.enumerated().map { (String($0.offset), $0.element) })
        try await h.indexAdd(Keys.fieldIndex("all"), scored + unscored)
        let small = Array(scored[0..<10]) + [unscored[0]]
        let big = Array(scored[0..<150]) + Array(scored[195...]) + unscored
        try await h.indexAdd(Keys.tag("small"), small)
        try await h.indexAdd(Keys.tag("big"), big)
        let audiences = AudienceStore(redis: h.redis)
        func ids(_ r: ClosedRange<Int>) -> Set<String> { Set(r.map { scored[$0] }) }
        func check(_ text: String, _ expected: Set<String>, line: UInt = #line) async throws {
            let p = try await audiences.preview(TagExpression.parse(text), sample: 1000, nowMs: h.now)
            XCTAssertEqual(p.count, expected.count, text, line: line)
            XCTAssertEqual(Set(p.sample), expected, text, line: line)
        }

        try await check("score>=190", ids(190...199))  // one range: ZCOUNT, every member when the sample covers them
        try await check("score=42", [scored[42]])
        try await check("small & score>=5", ids(5...9))  // the set is far smaller: its members are checked
        try await check("big & score>=190", ids(195...199))  // the range is far smaller: read as a set
        try await check("score>=50 & score<60", ids(50...59))  // two ranges: the smaller read, the other checked
        try await check("score<100", ids(0...99).union(unscored))  // 0 matches: everyone but the range
        try await check("score>=100 | small", ids(100...199).union(small))
        try await check("big & !score>=10 & score>=5", ids(5...9))
        try await check("small & score>=5 & score<=7", ids(5...7))
        try await check("big & small & score>=5", ids(5...9))  // the smaller set's members checked against the other set too
        try await check("small & big & !score>=8 & score>=3", ids(3...7))

        // Text attributes (ZRANGE BYLEX ranks over `<value>\u{1F}<id>`): alone, as the smallest input
        // of an intersection (read directly, several 1,000-member chunks), and as a larger one.
        let cities = AudienceStore(redis: h.redis, attributes: CustomerAttributes())
        let shanghai = (0..<2_500).map { String(format: "s%04d", $0) }
        var entries = shanghai.map { ("0", "shanghai\u{1F}\($0)") }
        entries += scored.map { ("0", "beijing\u{1F}\($0)") } + [("0", "shanghaix\u{1F}x1"), ("0", "shangha\u{1F}x2")]
        try await h.indexAdd(Keys.attributeIndex("city"), entries)
        try await h.indexAdd(Keys.attributeIndex("spend"), shanghai.enumerated().map { (String($0.offset), $0.element) })
        try await h.indexAdd(Keys.tag("even"), shanghai.enumerated().filter { $0.offset % 2 == 0 }.map(\.element))
        func city(_ text: String, sample: Int = 5_000) async throws -> AudienceStore.Preview {
            try await cities.preview(TagExpression.parse(text), sample: sample, nowMs: h.now)
        }
        let alone = try await city("profile.city=Shanghai")
        XCTAssertEqual(alone.count, 2_500)
        XCTAssertEqual(Set(alone.sample), Set(shanghai), "neither shanghaix nor shangha")
        let few = try await city("profile.city=Shanghai", sample: 7)
        XCTAssertEqual(Set(few.sample).count, 7)
        XCTAssertTrue(Set(few.sample).isSubset(of: Set(shanghai)))
        let rich = try await city("profile.city=shanghai & profile.spend>=1000")
        XCTAssertEqual(Set(rich.sample), Set(shanghai[1000...]))
        let evenRich = try await city("even & profile.city=SHANGHAI & profile.spend>=2000")
        XCTAssertEqual(Set(evenRich.sample), Set(shanghai[2000...].enumerated().filter { $0.offset % 2 == 0 }.map(\.element)))
        let smallTag = try await city("small & profile.city=Beijing")
        XCTAssertEqual(Set(smallTag.sample), Set(scored[0..<10]))

        // A large range alone: the count is exact and the sample distinct members of it.
        let wide = try await audiences.preview(TagExpression.parse("score>=20"), sample: 25, nowMs: h.now)
        XCTAssertEqual(wide.count, 180)
        XCTAssertEqual(Set(wide.sample).count, 25)
        XCTAssertTrue(Set(wide.sample).isSubset(of: ids(20...199)))

        // A snapshot of a range is the whole range, read by rank (more than one 5,000 page needs no offset walk).
        try await h.indexAdd(Keys.scores, (0..<12_000).map { (String(1000 + $0), "w\($0)") })
        let size = try await audiences.snapshot(TagExpression.parse("score>=1000"), into: "test:snapshot", nowMs: h.now)
        XCTAssertEqual(size, 12_000)
        let stored = try await h.indexMembers("test", "snapshot").count
        XCTAssertEqual(stored, 12_000)
        let leftovers = try await h.keys("tmp:*")
        XCTAssertEqual(leftovers, [], "temporary sets are removed")
    }

    /// Tags and fields with a few negations are counted with SINTERCARD and sampled by drawing from
    /// the smallest set: the same answers as set arithmetic, no set written (no SINTERSTORE,
    /// SDIFFSTORE or SUNIONSTORE runs), and a rare audience still gets its whole sample from the full evaluation.
    func test_setPlans_countAndSampleWithoutBuildingSets() async throws {
        let h = try Harness()
        let everyone = (0..<3_000).map { String(format: "c%04d", $0) }
        var sets: [String: Set<String>] = [:]
        let rules: [String: (Int) -> Bool] = [
            "a": { $0 % 3 == 0 }, "b": { $0 % 4 < 2 }, "c": { $0 % 5 == 0 }, "d": { $0 % 7 == 0 }, "e": { $0 % 11 == 0 }, "rare": { $0 == 1_998 || $0 == 6 },
        ]
        for (tag, rule) in rules {
            let members = everyone.indices.filter(rule).map { everyone[$0] }
            sets[tag] = Set(members)
            try await h.indexAdd(Keys.tag(tag), members)
        }
        try await h.indexAdd(Keys.fieldIndex("all"), everyone)
        let audiences = AudienceStore(redis: h.redis)
        func stat(_ command: String) async throws -> Int {
            var total = 0
            for (_, replies) in try await h.redis.onEachMaster([["INFO", "commandstats"]]) {
                let info = replies[0].string ?? ""
                guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_\(command):") }),
                    let calls = line.split(separator: "=").dropFirst().first?.split(separator: ",").first
                else { continue }
                total += Int(calls) ?? 0
            }
            return total
        }
        func check(_ text: String, _ expected: Set<String>, fast: Bool, line: UInt = #line) async throws {
            let built = try await stat("sinterstore") + stat("sdiffstore") + stat("sunionstore")
            let p = try await audiences.preview(TagExpression.parse(text), sample: 20, nowMs: h.now)
            XCTAssertEqual(p.count, expected.count, text, line: line)
            XCTAssertEqual(p.sample.count, min(20, expected.count), text, line: line)
            XCTAssertEqual(Set(p.sample).count, p.sample.count, "distinct: \(text)", line: line)
            XCTAssertTrue(Set(p.sample).isSubset(of: expected), text, line: line)
            let builtAfter = try await stat("sinterstore") + stat("sdiffstore") + stat("sunionstore")
            XCTAssertEqual(builtAfter == built, fast, "\(text) \(fast ? "builds no set" : "is evaluated in full")", line: line)
        }
        let all = Set(everyone)
        let a = sets["a"]!, b = sets["b"]!, c = sets["c"]!, d = sets["d"]!, e = sets["e"]!, rare = sets["rare"]!
        try await check("a", a, fast: true)
        try await check("a & b", a.intersection(b), fast: true)
        try await check("a & b & !c", a.intersection(b).subtracting(c), fast: true)
        try await check("!c", all.subtracting(c), fast: true)
        try await check("!c & !d", all.subtracting(c).subtracting(d), fast: true)
        try await check("!(c | d)", all.subtracting(c).subtracting(d), fast: true)  // normalized to !c & !d
        try await check("a & !b & !c & !d", a.subtracting(b).subtracting(c).subtracting(d), fast: true)
        try await check("a & !b & !b", a.subtracting(b), fast: true)
        try await check("a & !a", [], fast: true)
        try await check("a & nobody", [], fast: true)
        try await check("a & !b & !c & !d & !e", a.subtracting(b).subtracting(c).subtracting(d).subtracting(e), fast: false)  // four negations
        try await check("a | c", a.union(c), fast: false)
        // Drawn from the smallest set: `rare` (both members checked), `e` (a sixth of it qualifies).
        try await check("rare & a", rare.intersection(a), fast: true)
        try await check("!b & a & e & !rare", a.intersection(e).subtracting(b).subtracting(rare), fast: true)
        // One customer in two sets of 20,001: too rare to find by drawing, so evaluated in full.
        try await h.indexAdd(Keys.tag("huge"), (0..<20_000).map { "h\($0)" } + ["c0006"])
        try await h.indexAdd(Keys.tag("vast"), (0..<20_000).map { "v\($0)" } + ["c0006"])
        // On a cluster each shard holds one or two of them: every shard's sets are small enough to check whole.
        try await check("huge & vast", ["c0006"], fast: h.redis.isCluster)
        let leftovers = try await h.keys("tmp:*")
        XCTAssertEqual(leftovers, [])
    }

    /// The live count's estimate: from 4,000 random members of the smallest set, within its 95% margin
    /// of the true count; exact when that set is no larger than the draw; refused (nil: count it
    /// exactly) for other shapes and for audiences too rare in the set to estimate within a tenth.
    func test_estimate_isWithinItsMargin_andExactWhenTheSetIsSmall() async throws {
        let h = try Harness()
        let big = (0..<20_000).map { String(format: "b%05d", $0) }
        try await h.indexAdd(Keys.tag("big"), big)
        try await h.indexAdd(Keys.tag("third"), big.enumerated().filter { $0.offset % 3 == 0 }.map(\.element))
        try await h.indexAdd(Keys.tag("odd"), big.enumerated().filter { $0.offset % 2 == 1 }.map(\.element))
        try await h.indexAdd(Keys.tag("few"), ["b00003", "b00004", "b00009"])
        try await h.indexAdd(Keys.tag("tiny"), ["b00006"])
        let audiences = AudienceStore(redis: h.redis)

        // big & !odd & third: every sixth customer, 3,334 of 20,000 (drawn from `third`, 6,667 > 4,000).
        let truth = big.enumerated().filter { $0.offset % 6 == 0 }.map(\.element)
        let drawn = try await audiences.estimate(TagExpression.parse("big & third & !odd"), sample: 10)
        if h.redis.isCluster {
            // A cluster makes no estimate: the exact count runs shard by shard, in parallel over the masters.
            XCTAssertNil(drawn)
            try await h.test { client in
                let r = try await client.send(.post, "/api/v1/audiences/preview", json: #"{"expression":"big & third & !odd","estimate":true}"#)
                XCTAssertEqual(r.status, .ok, r.text)
                XCTAssertEqual(r.json["estimated"] as? Bool, false)
                XCTAssertEqual(r.json["count"] as? Int, truth.count, "exact")
                XCTAssertNil(r.json["margin"])
                XCTAssertEqual(Set(r.json["sample"] as? [String] ?? []).isSubset(of: Set(truth)), true)
            }
            return
        }
        let e = try XCTUnwrap(drawn)
        XCTAssertFalse(e.isExact)
        XCTAssertEqual(e.checked, AudienceStore.estimateDraws)
        XCTAssertEqual(e.setSize, 6_667)
        // The margin is a 95% interval (1.96 σ): twice it (3.9 σ) holds the truth but once in 10,000 runs.
        XCTAssertLessThanOrEqual(abs(e.count - truth.count), 2 * e.margin, "\(e.count) ± \(e.margin) vs \(truth.count)")
        XCTAssertLessThanOrEqual(Double(e.margin), 0.1 * Double(e.count))
        XCTAssertEqual(e.sample.count, 10)
        XCTAssertTrue(Set(e.sample).isSubset(of: Set(truth)))

        // A small smallest set: every member checked, the count exact.
        let checkedWhole = try await audiences.estimate(TagExpression.parse("few & big & !odd"), sample: 10)
        let exact = try XCTUnwrap(checkedWhole)
        XCTAssertTrue(exact.isExact)
        XCTAssertEqual(exact.count, 1)
        XCTAssertEqual(exact.margin, 0)
        XCTAssertEqual(exact.sample, ["b00004"])
        let nobody = try await audiences.estimate(TagExpression.parse("nobody & big"), sample: 10)
        XCTAssertEqual(nobody?.count, 0)

        // Alternatives with no set every member needs are drawn from all customers.
        try await h.indexAdd(Keys.fieldIndex("all"), big)
        let unionTruth = Set(big.enumerated().filter { $0.offset % 2 == 1 }.map(\.element)).union(["b00003", "b00004", "b00009"])
        let drawnUnion = try await audiences.estimate(TagExpression.parse("few | odd"), sample: 10)
        let union = try XCTUnwrap(drawnUnion)
        XCTAssertEqual(union.setSize, 20_000)
        XCTAssertLessThanOrEqual(abs(union.count - unionTruth.count), 2 * union.margin, "\(union.count) ± \(union.margin) vs \(unionTruth.count)")
        XCTAssertTrue(Set(union.sample).isSubset(of: unionTruth))
        // (a | b) & c draws from c and checks the alternatives: here c is small, so it is exact.
        let mixed = try await audiences.estimate(TagExpression.parse("(odd | third) & few & !(big & tiny)"), sample: 10)
        XCTAssertEqual(mixed?.isExact, true)
        XCTAssertEqual(mixed.map { Set($0.sample) }, ["b00003", "b00009"])
        // Scores and attributes are not drawn; too rare in the set drawn from (1 in 10,000): no estimate.
        let scored = try await audiences.estimate(TagExpression.parse("big & score>=10"), sample: 10)
        XCTAssertNil(scored)
        let thin = try await audiences.estimate(TagExpression.parse("evens & tiny"), sample: 10)
        XCTAssertEqual(thin?.isExact, true, "tiny (1 member) is the smallest set: checked whole")
        try await h.indexAdd(Keys.tag("evens2"), big.enumerated().filter { $0.offset % 2 == 0 && $0.offset != 6 }.map(\.element) + ["b00001"])
        let needle = try await audiences.estimate(TagExpression.parse("odd & evens2"), sample: 10)
        XCTAssertNil(needle, "1 in 10,000 of the set drawn from: the estimate is refused, the count is exact")

        // Through the API: `estimate` asked for, an exact answer when the draw covered the set.
        try await h.test { client in
            let r = try await client.send(.post, "/api/v1/audiences/preview", json: #"{"expression":"few & big & !odd","estimate":true}"#)
            XCTAssertEqual(r.status, .ok, r.text)
            XCTAssertEqual(r.json["estimated"] as? Bool, false)
            XCTAssertEqual(r.json["count"] as? Int, 1)
            XCTAssertNil(r.json["margin"])
            let est = try await client.send(.post, "/api/v1/audiences/preview", json: #"{"expression":"big & third & !odd","estimate":true}"#)
            XCTAssertEqual(est.json["estimated"] as? Bool, true)
            XCTAssertLessThanOrEqual(abs((est.json["count"] as? Int ?? 0) - truth.count), 2 * (est.json["margin"] as? Int ?? 0))
            let full = try await client.send(.post, "/api/v1/audiences/preview", json: #"{"expression":"big & third & !odd"}"#)
            XCTAssertEqual(full.json["count"] as? Int, truth.count, "without estimate the count is exact")
            XCTAssertEqual(full.json["estimated"] as? Bool, false)
        }
    }
}

extension Harness {
    /// Adds customers to a set index named as on a single Redis; on a cluster each to its own shard.
    func indexAdd(_ single: String, _ members: [String]) async throws {
        try await indexAdd(single, members.map { (nil as String?, $0) })
    }

    /// Adds (score, member) pairs to a sorted-set index (a member `<value>\u{1F}<id>` of an attribute
    /// index is the customer after the separator); a nil score adds to a set.
    func indexAdd(_ single: String, _ entries: [(String?, String)]) async throws {
        var byKey = [String: [String]]()
        for (score, member) in entries {
            let customer = member.split(separator: "\u{1F}").last.map(String.init) ?? member
            byKey[shard(customer).key(single: single), default: []] += score.map { [$0, member] } ?? [member]
        }
        let command = entries.first?.0 == nil ? "SADD" : "ZADD"
        _ = try await redis.pipelineChecked(byKey.map { [command, $0.key] + $0.value })
    }
}

/// The estimate's arithmetic: the count scaled up from the draw, its 95% margin with the
/// finite-population correction, the rule of three when nothing was hit.
final class AudienceEstimateTests: XCTestCase {
    func test_countAndMargin() {
        let half = AudienceEstimate(hits: 2_000, checked: 4_000, setSize: 300_000, sample: [])
        XCTAssertEqual(half.count, 150_000)
        // 1.96 × 300,000 × √(0.25 / 4,000 × 296,000 / 299,999) = 4,617.5
        XCTAssertEqual(half.margin, 4_618)
        XCTAssertTrue(half.isPreciseEnough)
        let none = AudienceEstimate(hits: 0, checked: 4_000, setSize: 1_000_000, sample: [])
        XCTAssertEqual(none.count, 0)
        XCTAssertEqual(none.margin, 750)
        XCTAssertFalse(none.isPreciseEnough)
        let whole = AudienceEstimate(hits: 17, checked: 3_000, setSize: 3_000, sample: [])
        XCTAssertTrue(whole.isExact)
        XCTAssertEqual(whole.count, 17)
        XCTAssertEqual(whole.margin, 0)
        let rare = AudienceEstimate(hits: 20, checked: 4_000, setSize: 1_000_000, sample: [])
        XCTAssertEqual(rare.count, 5_000)
        XCTAssertFalse(rare.isPreciseEnough, "± 2,182 on 5,000 is too wide")
    }
}

/// How an expression becomes the estimate's program: anchors first (the top-level sets every member
/// needs), then the other sets, and the expression in postfix.
final class AudienceDrawPlanTests: XCTestCase {
    func test_programs() throws {
        let p = try XCTUnwrap(AudienceDrawPlan(try TagExpression.parse("(vip | webinar) & expo & !churned"), requireOptIn: []))
        XCTAssertEqual(p.keys, ["tag:expo", "tag:vip", "tag:webinar", "tag:churned"])
        XCTAssertEqual(p.anchors, 1)
        XCTAssertEqual(p.program, ["k2", "k3", "|", "k1", "&", "k4", "!", "&"])
        let none = try XCTUnwrap(AudienceDrawPlan(try TagExpression.parse("a | !b"), requireOptIn: []))
        XCTAssertEqual(none.keys.first, "fidx:all", "nothing every member needs: drawn from all customers")
        XCTAssertEqual(none.anchors, 1)
        let optIn = try XCTUnwrap(AudienceDrawPlan(try TagExpression.parse("consent:sms & vip"), requireOptIn: ["sms"]))
        XCTAssertEqual(optIn.keys, ["fidx:optin:sms", "tag:vip"])
        XCTAssertEqual(optIn.anchors, 2)
        XCTAssertNil(AudienceDrawPlan(try TagExpression.parse("vip & score>=10"), requireOptIn: []))
    }
}
