import Foundation
import GatewayCore
import XCTest

final class ContactRulesTests: XCTestCase {
    let shanghai = TimeZone(identifier: "Asia/Shanghai")!
    let overnight = ContactRules(quietHours: ContactRules.QuietHours(startMinute: 21 * 60, endMinute: 8 * 60))

    /// ms of a local wall-clock time in a zone.
    func at(_ y: Int, _ mo: Int, _ d: Int, _ h: Int, _ mi: Int, _ zone: TimeZone) -> Int64 {
        var c = DateComponents()
        (c.year, c.month, c.day, c.hour, c.minute) = (y, mo, d, h, mi)
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = zone
        return Int64(cal.date(from: c)!.timeIntervalSince1970 * 1000)
    }

    func test_quietHoursAcrossMidnight_endTheNextMorningLocally() {
        XCTAssertNil(overnight.quietUntil(nowMs: at(2026, 11, 24, 20, 59, shanghai), zone: shanghai))
        XCTAssertEqual(overnight.quietUntil(nowMs: at(2026, 11, 24, 21, 0, shanghai), zone: shanghai), at(2026, 11, 25, 8, 0, shanghai))
        XCTAssertEqual(overnight.quietUntil(nowMs: at(2026, 11, 25, 3, 30, shanghai), zone: shanghai), at(2026, 11, 25, 8, 0, shanghai))
        XCTAssertNil(overnight.quietUntil(nowMs: at(2026, 11, 25, 8, 0, shanghai), zone: shanghai))
    }

    func test_quietHoursWithinADay_andNone() {
        let lunch = ContactRules(quietHours: ContactRules.QuietHours(startMinute: 12 * 60, endMinute: 13 * 60 + 30))
        XCTAssertEqual(lunch.quietUntil(nowMs: at(2026, 11, 24, 12, 10, shanghai), zone: shanghai), at(2026, 11, 24, 13, 30, shanghai))
        XCTAssertNil(lunch.quietUntil(nowMs: at(2026, 11, 24, 13, 30, shanghai), zone: shanghai))
        XCTAssertNil(ContactRules().quietUntil(nowMs: at(2026, 11, 24, 23, 0, shanghai), zone: shanghai))
    }

    func test_quietHoursFollowTheCustomersZone_includingDaylightSaving() {
        let ny = TimeZone(identifier: "America/New_York")!
        // 2026-11-01: clocks go back at 02:00 in New York; 08:00 local is then UTC-5.
        let night = at(2026, 10, 31, 23, 0, ny)
        XCTAssertEqual(overnight.quietUntil(nowMs: night, zone: ny), at(2026, 11, 1, 8, 0, ny))
        XCTAssertNil(overnight.quietUntil(nowMs: night, zone: shanghai), "11:00 the next day in Shanghai")
    }

    func test_capArguments_keepTheCapsForTheChannel() {
        let rules = ContactRules(caps: [
            ContactRules.Cap(channel: nil, max: 2, windowHours: 24), ContactRules.Cap(channel: nil, max: 5, windowHours: 168),
            ContactRules.Cap(channel: "sms", max: 1, windowHours: 24),
        ])
        XCTAssertEqual(rules.capArguments(channel: "sms"), ["3", "*", "2", "86400000", "*", "5", "604800000", "sms", "1", "86400000"])
        XCTAssertEqual(rules.capArguments(channel: "email"), ["2", "*", "2", "86400000", "*", "5", "604800000"])
        XCTAssertEqual(rules.longestWindowMs, 604_800_000)
        XCTAssertEqual(ContactRules.QuietHours.minute("21:30"), 21 * 60 + 30)
        XCTAssertNil(ContactRules.QuietHours.minute("24:00"))
        XCTAssertNil(ContactRules.QuietHours.minute("9:00"))
    }
}

final class CampaignDefinitionTests: XCTestCase {
    func test_variantSplit_followsTheWeights_withinTolerance_andHoldsOutThePercent() {
        var d = CampaignDefinition(name: "t", audience: "vip", channels: [.init(channel: "sms", text: "x")])
        d.variants = [.init(name: "A", weight: 70), .init(name: "B", weight: 30)]
        d.holdoutPercent = 10
        var counts = ["A": 0, "B": 0, "holdout": 0]
        let n = 20_000
        for i in 0..<n {
            let v = d.variant(campaign: "01KCAMPAIGN", customer: ULID.make(milliseconds: 1_790_000_000_000 + Int64(i)))
            counts[v?.name ?? "holdout", default: 0] += 1
        }
        // Binomial standard deviation at n = 20,000 is under 0.4 points; allow 1.5.
        XCTAssertEqual(Double(counts["holdout"]!) / Double(n), 0.10, accuracy: 0.015)
        let sent = Double(counts["A"]! + counts["B"]!)
        XCTAssertEqual(Double(counts["A"]!) / sent, 0.70, accuracy: 0.015)
        XCTAssertEqual(Double(counts["B"]!) / sent, 0.30, accuracy: 0.015)
    }

    func test_variant_isTheSameEveryTime_andDiffersAcrossCampaigns() {
        var d = CampaignDefinition(name: "t", audience: "vip", channels: [.init(channel: "sms", text: "x")])
        d.variants = [.init(name: "A", weight: 1), .init(name: "B", weight: 1)]
        let customers = (0..<200).map { ULID.make(milliseconds: Int64($0)) }
        let first = customers.map { d.variant(campaign: "c1", customer: $0)?.name }
        XCTAssertEqual(customers.map { d.variant(campaign: "c1", customer: $0)?.name }, first)
        XCTAssertNotEqual(customers.map { d.variant(campaign: "c2", customer: $0)?.name }, first, "another campaign splits differently")
    }

    func test_derivedIds_areValidAndStable() {
        let a = ULID.make(milliseconds: 1_790_000_000_000, randomBits: Array(repeating: 7, count: 10))
        XCTAssertTrue(ULID.isValid(a))
        XCTAssertEqual(a, ULID.make(milliseconds: 1_790_000_000_000, randomBits: Array(repeating: 7, count: 10)))
        XCTAssertNotEqual(a, ULID.make(milliseconds: 1_790_000_000_000, randomBits: Array(repeating: 8, count: 10)))
        XCTAssertEqual(CampaignDefinition.milliseconds("2026-12-01T09:00:00+08:00"), 1_796_086_800_000)
        XCTAssertNil(CampaignDefinition.milliseconds("tomorrow"))
    }
}
