import GatewayCore
import XCTest

final class TagExpressionTests: XCTestCase {
    func test_precedenceAndGrouping() throws {
        XCTAssertEqual(
            try TagExpression.parse("vip & (expo-2026 | webinar) & !churned"),
            .and([.tag("vip"), .or([.tag("expo-2026"), .tag("webinar")]), .not(.tag("churned"))]))
        XCTAssertEqual(try TagExpression.parse("a | b & c"), .or([.tag("a"), .and([.tag("b"), .tag("c")])]), "& binds tighter than |")
        XCTAssertEqual(try TagExpression.parse("!a & b"), .and([.not(.tag("a")), .tag("b")]), "! binds tightest")
        XCTAssertEqual(try TagExpression.parse("!!a"), .not(.not(.tag("a"))))
        XCTAssertEqual(try TagExpression.parse("  ((a))  "), .tag("a"))
    }

    func test_predicatesAndTagsWithColons() throws {
        XCTAssertEqual(
            try TagExpression.parse("stage:MQL & score>=50 & consent:sms & account:demo & tier:A"),
            .and([.field(.stage, "MQL"), .score(.atLeast, 50), .field(.consent, "sms"), .field(.account, "demo"), .field(.tier, "A")]))
        XCTAssertEqual(try TagExpression.parse("score < 10"), .score(.less, 10))
        XCTAssertEqual(try TagExpression.parse("score=-3"), .score(.equal, -3))
        XCTAssertEqual(try TagExpression.parse("source:expo-2026 | 贵宾"), .or([.tag("source:expo-2026"), .tag("贵宾")]), "other prefixes are tag names")
        XCTAssertEqual(try TagExpression.parse("vip & !source:expo-2026").tags, ["vip", "source:expo-2026"])
        XCTAssertFalse(TagName.isValid("stage:MQL"), "a tag no audience could name is refused when it is made")
        XCTAssertFalse(TagName.isValid("score"))
        XCTAssertTrue(TagName.isValid("scored"))
    }

    func test_aWordCannotStartWithACombiningMark_foundByTheFuzzer() {
        // U+065A is alphabetic but combining: written after "(" it fused into one character, so a
        // parsed expression did not parse back from its own text.
        XCTAssertThrowsError(try TagExpression.parse("\u{065A}iE & !(ches)"))
        XCTAssertFalse(TagName.isValid("\u{065A}iE"))
        XCTAssertTrue(TagName.isValid("iE\u{065A}"), "marks inside a name stay allowed")
        XCTAssertEqual(try? TagExpression.parse("(iE\u{065A} | b)"), .or([.tag("iE\u{065A}"), .tag("b")]))
    }

    func test_invalidInput_saysWhereAndWhatWasExpected() {
        let cases: [(String, Int, String)] = [
            ("", 0, "a tag, a predicate, '!' or '('"),
            ("vip &", 5, "a tag, a predicate, '!' or '('"),
            ("vip & (a | b", 12, "')'"),
            ("vip)", 3, "an operator (no '(' to close)"),
            ("vip webinar", 4, "an operator & or |"),
            ("score 50", 6, "a comparison (>=, <=, >, <, =) after score"),
            ("score >= x", 9, "a whole number"),
            ("stage:", 6, "a value after stage:"),
            ("a && b", 3, "a tag, a predicate, '!' or '('"),
            ("a & $b", 4, "a tag, a predicate, '!' or '('"),
        ]
        for (text, position, expected) in cases {
            XCTAssertThrowsError(try TagExpression.parse(text), text) { error in
                let e = error as? TagExpression.ParseError
                XCTAssertEqual(e?.position, position, "\(text): \(error)")
                XCTAssertEqual(e?.expected, expected, text)
            }
        }
        XCTAssertThrowsError(try TagExpression.parse(String(repeating: "(", count: 100) + "a" + String(repeating: ")", count: 100)), "nesting is bounded")
        XCTAssertThrowsError(try TagExpression.parse(String(repeating: "a", count: 65)), "a tag name longer than 64 is refused")
    }
}
