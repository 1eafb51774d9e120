import Foundation
import GatewayCore
import XCTest

final class JSONParserTests: XCTestCase {
    func parse(_ s: String) -> JSONValue? { JSONValue.parse(Array(s.utf8)) }

    func test_validDocuments() {
        XCTAssertEqual(
            parse(#" {"errcode":0,"errmsg":"ok","msgid":2553847254416343041,"list":[1,-2.5,1e3,true,false,null,{}],"e":[]} "#),
            .object([
                "errcode": .int(0), "errmsg": .string("ok"), "msgid": .int(2_553_847_254_416_343_041),
                "list": .array([.int(1), .double(-2.5), .double(1000), .bool(true), .bool(false), .null, .object([:])]), "e": .array([]),
            ]))
        XCTAssertEqual(parse(#""a\"b\\c\/d\n\t\u00e9\u4e2d\ud83d\ude00""#), .string("a\"b\\c/d\n\té中😀"))
        XCTAssertEqual(parse("\"中文 ok\""), .string("中文 ok"))
        XCTAssertEqual(parse("9223372036854775808"), .double(9_223_372_036_854_775_808), "past Int64: a double")
        XCTAssertEqual(parse("-0"), .int(0))
    }

    func test_invalidDocuments_areRefused() {
        for bad in [
            "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "'a'", "01", "1.", ".5", "1e", "+1", "tru", "nul", "[1] 2",
            "\"unterminated", "\"bad \\x escape\"", "\"\\ud83d alone\"", "\"\\ude00 low first\"", "\"tab\there\"", "\"\\u12G4\"", "NaN",
        ] {
            XCTAssertNil(parse(bad), "accepted \(bad.debugDescription)")
        }
        XCTAssertNil(JSONValue.parse([0x22, 0xFF, 0x22]), "invalid UTF-8")
        XCTAssertNil(parse(String(repeating: "[", count: 600) + String(repeating: "]", count: 600)), "nesting is capped")
        XCTAssertNotNil(parse(String(repeating: "[", count: 100) + String(repeating: "]", count: 100)))
    }

    func test_roundTripsThroughText() {
        let v = JSONValue.object(["b": .array([.int(1), .string("x\"y")]), "a": .null, "n": .double(0.25)])
        XCTAssertEqual(parse(v.text), v)
    }
}
