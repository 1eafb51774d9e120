import GatewayCore
import XCTest

@testable import Outbound

/// Templates of text and plain variables render by joining (no Mustache); they must render exactly
/// as Mustache does, and anything else must still go through Mustache.
final class TextTemplateTests: XCTestCase {
    let context: [String: Any] = [
        "to": "+8613800000001", "text": "Hi <Ann> & \"co\" {{not a tag}}", "profile": ["nickname": "安娜", "first-name": "Ann"],
        "count": 3, "flag": true, "empty": "",
    ]

    func test_plainTemplates_renderAsMustacheDoes_withoutIt() throws {
        for source in [
            "{{to}}", "Body: {{text}}", "{{{text}}}|{{& text}}|{{ to }}", "Dear {{profile.nickname}} ({{profile.first-name}}), see {{to}}.", "no tags at all",
            "", "{{to}}{{to}}", "line1\n  {{to}}\nline3",
        ] {
            let t = try TextTemplate(source, path: "t")
            XCTAssertNotNil(TextTemplate.pieces(source), source)
            XCTAssertEqual(try t.render(context), t.renderLeniently(context), source)
        }
    }

    func test_aMissingOrEmptyVariable_isRefusedByName() throws {
        XCTAssertThrowsError(try TextTemplate("a {{to}} b {{nope}} {{gone.too}}", path: "t").render(context)) {
            XCTAssertEqual($0 as? RenderError, .missingVariable("nope"))
        }
        XCTAssertThrowsError(try TextTemplate("{{empty}}", path: "t").render(context)) { XCTAssertEqual($0 as? RenderError, .missingVariable("empty")) }
    }

    func test_sectionsCommentsAndNonTextValues_goThroughMustache() throws {
        for source in ["{{#flag}}yes{{/flag}}", "{{^nope}}none{{/nope}}", "{{! note}}x", "{{.}}", "{{> partial}}"] {
            XCTAssertNil(TextTemplate.pieces(source), source)
        }
        let sections = try TextTemplate("{{#flag}}yes {{to}}{{/flag}}{{^nope}}!{{/nope}}", path: "t")
        XCTAssertEqual(try sections.render(context), "yes +8613800000001!")
        // A number is not text: Mustache formats it, the same as before the fast path.
        let number = try TextTemplate("n={{count}}", path: "t")
        XCTAssertNotNil(TextTemplate.pieces("n={{count}}"))
        XCTAssertEqual(try number.render(context), number.renderLeniently(context))
        XCTAssertEqual(try number.render(context), "n=3")
    }
}
