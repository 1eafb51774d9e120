import XCTest

@testable import GatewayCore

final class LinkTokensTests: XCTestCase {
    func test_base64url_roundTripsEveryLength_andRefusesOtherAlphabets() {
        for n in 0..<40 {
            let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            let text = Base64URL.encode(bytes)
            XCTAssertEqual(text, Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: ""))
            XCTAssertEqual(Base64URL.decode(text), bytes)
        }
        XCTAssertNil(Base64URL.decode("ab+c"))
        XCTAssertNil(Base64URL.decode("abc="))
        XCTAssertNil(Base64URL.decode("abcde"))
        XCTAssertEqual(Base64URL.decode("AA"), [0])
        XCTAssertNil(Base64URL.decode("AB"), "the unused low bits must be zero: one spelling per byte string")
        XCTAssertNil(Base64URL.decode("AAB"))
    }

    func test_tokens_areShortOpaqueAndSigned() throws {
        let tokens = try XCTUnwrap(LinkTokens(secret: "a-link-secret-0123456789", publicURL: "https://gw.example.com"))
        // Many ids: the last character of a token carries unused bits, which a lax decoder ignores
        // (this failed 1 run in 4 before the decoder refused non-canonical text).
        for _ in 0..<200 { try checkEveryChange(tokens, ULID.make(milliseconds: 1_790_000_000_000)) }
        let id = ULID.make(milliseconds: 1_790_000_000_000)
        XCTAssertEqual(ULID.bytes(id).flatMap(ULID.string), id)
        let token = try XCTUnwrap(tokens.token(messageId: id, index: 3))
        XCTAssertEqual(token.count, 31)
        XCTAssertFalse(token.contains(String(id.prefix(8))), "the id is not readable in the token")
        XCTAssertTrue(tokens.verify(token)! == (id, 3))
        XCTAssertEqual(tokens.clickURL(messageId: id, index: 3), "https://gw.example.com/l/\(token)")
        // Any change to any character is refused; so is another secret's token.
        for i in 0..<token.count {
            var chars = Array(token)
            chars[i] = chars[i] == "A" ? "B" : "A"
            XCTAssertNil(tokens.verify(String(chars)), "changed at \(i)")
        }
        let other = try XCTUnwrap(LinkTokens(secret: "another-secret-0123456789", publicURL: "https://gw.example.com"))
        XCTAssertNil(other.verify(token))
        XCTAssertNil(LinkTokens(secret: "short", publicURL: "x"))
    }

    func checkEveryChange(_ tokens: LinkTokens, _ id: String) throws {
        let token = try XCTUnwrap(tokens.token(messageId: id, index: 7))
        XCTAssertNotNil(tokens.verify(token))
        let original = Array(token)
        for i in 0..<token.count {
            for replacement in ["A", "B", "-"] where String(original[i]) != replacement {
                var chars = original
                chars[i] = Character(replacement)
                XCTAssertNil(tokens.verify(String(chars)), "\(token) changed at \(i) to \(replacement)")
            }
        }
    }

    func test_rewriter_tracksEachURLOnce_keepsOursAndPunctuation() {
        var r = LinkRewriter(skip: ["https://gw/u/"])
        let tracked = { (n: Int) in "T\(n)" }
        XCTAssertEqual(r.rewriteText("See https://a.example/x?y=1, then (https://b.example/). Stop: https://gw/u/tok", tracked), "See T0, then (T1). Stop: https://gw/u/tok")
        XCTAssertEqual(
            r.rewriteHTML(#"<a HREF="https://a.example/x?y=1">a</a><a href='https://c.example/?p=1&amp;q=2'>c</a><a href="mailto:x@y">m</a>"#, tracked),
            #"<a HREF="T0">a</a><a href='T2'>c</a><a href="mailto:x@y">m</a>"#)
        XCTAssertEqual(r.urls, ["https://a.example/x?y=1", "https://b.example/", "https://c.example/?p=1&q=2"])
    }
}
