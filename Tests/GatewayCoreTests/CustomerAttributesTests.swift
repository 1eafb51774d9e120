import XCTest

@testable import GatewayCore

final class CustomerAttributesTests: XCTestCase {
    let attributes = CustomerAttributes(
        CustomerAttributes.defaults + [.init(name: "member", kind: .boolean), .init(name: "level", kind: .enumeration(["silver", "gold"]))],
        defaultTimeZone: "Asia/Shanghai")

    func test_canonical_keepsEachTypesOneStoredForm() throws {
        XCTAssertEqual(try attributes.canonical("spend", .int(1200)), "1200")
        XCTAssertEqual(try attributes.canonical("spend", .double(1200.0)), "1200")
        XCTAssertEqual(try attributes.canonical("spend", .double(99.5)), "99.5")
        XCTAssertEqual(try attributes.canonical("spend", text: " -12 "), "-12")
        XCTAssertEqual(try attributes.canonical("spend", text: "1e3"), "1000")
        XCTAssertEqual(try attributes.canonical("member", .bool(true)), "true")
        XCTAssertEqual(try attributes.canonical("member", text: "No"), "false")
        XCTAssertEqual(try attributes.canonical("level", text: "gold"), "gold")
        XCTAssertEqual(try attributes.canonical("city", .string("  上海 ")), "上海")
        XCTAssertEqual(try attributes.canonical("timezone", text: "Europe/Berlin"), "Europe/Berlin")
        XCTAssertEqual(try attributes.canonical("expo_date", text: "2026-12-10T09:00+08:00"), "2026-12-10T09:00:00+08:00")
        XCTAssertEqual(try attributes.canonical("expo_date", text: "2026-12-10T01:00:00.250Z"), "2026-12-10T01:00:00Z")
        XCTAssertEqual(try attributes.canonical("expo_date", text: "2026-12-10"), "2026-12-10T00:00:00+08:00", "a date is midnight in the default zone")
    }

    func test_canonical_refusesWrongTypes_namingTheField() {
        let bad: [(String, JSONValue)] = [
            ("spend", .string("lots")), ("spend", .bool(true)), ("spend", .string("nan")), ("spend", .double(1e300)), ("member", .string("maybe")),
            ("member", .int(1)), ("level", .string("Gold")), ("expo_date", .string("2026-13-01")), ("expo_date", .string("2026-12-10T09:00")),
            ("expo_date", .string("2026-12-10T25:00:00Z")), ("timezone", .string("Mars/Base")), ("city", .string("")), ("city", .string("a\u{1}b")),
            ("city", .string(String(repeating: "x", count: 1025))), ("city", .int(5)), ("unknown", .string("x")),
        ]
        for (name, value) in bad {
            XCTAssertThrowsError(try attributes.canonical(name, value), "\(name) = \(value)") {
                XCTAssertEqual(($0 as? CustomerAttributes.Invalid)?.field, "profile.\(name)")
            }
        }
    }

    func test_datetimeMillis_matchesFoundation_acrossZonesAndLeapDays() throws {
        let formatter = ISO8601DateFormatter()
        for text in ["2026-12-10T09:00:00+08:00", "2024-02-29T23:59:59-05:30", "1999-12-31T00:00:00Z", "2100-03-01T12:00:00+14:00", "1969-07-20T20:17:40Z"] {
            let expected = Int64(try XCTUnwrap(formatter.date(from: text)).timeIntervalSince1970 * 1000)
            XCTAssertEqual(CustomerAttributes.datetimeMillis(text, defaultZone: "UTC"), expected, text)
        }
        XCTAssertNil(CustomerAttributes.datetimeMillis("2023-02-29", defaultZone: "UTC"), "not a leap year")
        XCTAssertEqual(CustomerAttributes.datetimeMillis("2026-12-10", defaultZone: "Asia/Shanghai"), 1_796_860_800_000 - 8 * 3_600_000, "midnight in Shanghai is 16:00 UTC the day before")
    }

    func test_predicates_resolveToTheRightIndex_andRefuseWhatCannotBeAnswered() throws {
        let now: Int64 = 1_790_000_000_000
        XCTAssertEqual(try attributes.predicate("profile.spend", .atLeast, "1000", nowMs: now), .ordered(key: "pidx:spend", .atLeast, 1000))
        XCTAssertEqual(try attributes.predicate("lastSeen", .greater, "now-30d", nowMs: now), .ordered(key: Keys.lastSeenIndex, .greater, Double(now - 30 * 86_400_000)))
        XCTAssertEqual(try attributes.predicate("created", .less, "now+2h", nowMs: now), .ordered(key: Keys.customers, .less, Double(now + 7_200_000)))
        XCTAssertEqual(try attributes.predicate("profile.city", .equal, "ShangHai", nowMs: now), .text(key: "pidx:city", "shanghai"))
        XCTAssertEqual(try attributes.predicate("profile.member", .equal, "yes", nowMs: now), .text(key: "pidx:member", "true"))
        for (name, cmp, value) in [
            ("profile.nickname", TagExpression.Comparison.equal, "Ann"), ("profile.city", .greater, "A"), ("profile.spend", .less, "x"),
            ("profile.expo_date", .less, "soon"), ("lastSeen", .greater, "now-30y"), ("profile.nope", .equal, "1"), ("profile.level", .equal, "bronze"),
        ] {
            XCTAssertThrowsError(try attributes.predicate(name, cmp, value, nowMs: now), "\(name)\(cmp.rawValue)\(value)")
        }
    }

    func test_expressions_parseAttributeComparisons() throws {
        XCTAssertEqual(
            try TagExpression.parse(#"vip & profile.spend >= 1000 & profile.city="New York" & lastSeen>now-30d"#),
            .and([.tag("vip"), .attribute("profile.spend", .atLeast, "1000"), .attribute("profile.city", .equal, "New York"), .attribute("lastSeen", .greater, "now-30d")]))
        XCTAssertEqual(try TagExpression.parse("!(profile.expo_date<2026-12-10T09:00:00+08:00)"), .not(.attribute("profile.expo_date", .less, "2026-12-10T09:00:00+08:00")))
        // After a line break a combining mark starts its own character; rendered after "=" it would fuse with it.
        for bad in ["profile.spend", "profile.spend>=", #"profile.city=""#, "lastSeen~1", #"profile.city="x"#, "profile.city=\n\u{301}x"] {
            XCTAssertThrowsError(try TagExpression.parse(bad), bad)
        }
    }

    func test_config_declaresAttributes_andRefusesBadOnes() throws {
        let config = try ConfigLoader(environment: [:]).load(yaml: """
            customers:
              attributes:
                tier_name: "enum:[bronze, silver, gold]"
                score2: number
                region: { type: string, indexed: true }
                opted: { type: boolean, indexed: false }
            contactRules: { timezone: Europe/Berlin, requireOptIn: { sms: true, email: false } }
            """)
        let a = config.customers.attributes
        XCTAssertEqual(a.attributes["tier_name"]?.kind, .enumeration(["bronze", "silver", "gold"]))
        XCTAssertEqual(a.attributes["region"]?.indexed, true)
        XCTAssertEqual(a.attributes["opted"]?.indexed, false)
        XCTAssertNil(a.attributes["nickname"], "a declared list replaces the defaults")
        XCTAssertEqual(a.defaultTimeZone, "Europe/Berlin")
        XCTAssertEqual(a.indexSchema.map(\.0), ["region", "score2", "tier_name"])
        XCTAssertEqual(config.contactRules.requireOptIn, ["sms"])
        for (yaml, path) in [
            ("customers: { attributes: { Bad-Name: string } }", "customers.attributes.Bad-Name"),
            ("customers: { attributes: { a: float } }", "customers.attributes.a"),
            ("customers: { attributes: { a: \"enum:[]\" } }", "customers.attributes.a"),
            ("customers: { attributes: { a: { type: string, index: true } } }", "customers.attributes.a.index"),
            ("contactRules: { requireOptIn: { fax: true } }", "contactRules.requireOptIn.fax"),
        ] {
            XCTAssertThrowsError(try ConfigLoader(environment: [:]).load(yaml: yaml), yaml) { XCTAssertEqual(($0 as? ConfigError)?.path, path, yaml) }
        }
    }

    func test_sendEligibility_optInChannelsNeedAGrantedConsent_forMarketingOnly() {
        let phone = [Identity(kind: .phone, value: "+8613800000001")]
        func decide(_ consent: [String: ConsentRecord], transactional: Bool = false) -> SendEligibility {
            SendEligibility.decide(channel: "sms", account: nil, to: nil, transactional: transactional, identities: phone, consent: consent, requireOptIn: ["sms"])
        }
        XCTAssertEqual(decide([:]), .skip(reason: "sms_no_opt_in"))
        XCTAssertEqual(decide(["sms": ConsentRecord(state: "granted", at: 1)]), .send(to: "+8613800000001"))
        XCTAssertEqual(decide(["sms": ConsentRecord(state: "opted_out", at: 1)]), .skip(reason: "sms_opted_out"), "a refusal keeps its reason")
        XCTAssertEqual(decide([:], transactional: true), .send(to: "+8613800000001"), "a verification code needs no marketing opt-in")
        XCTAssertEqual(
            SendEligibility.decide(channel: "sms", account: nil, to: nil, transactional: false, identities: phone, consent: [:]), .send(to: "+8613800000001"),
            "without the rule, no consent recorded is enough")
    }
}
