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
    }

    func test_tokens_areShortOpaqueAndSigned() throws {
        let tokens = try XCTUnwrap(LinkTokens(secret: "a-link-secret-0123456789", publicURL: "https://gw.example.com"))
        let id = CustomerID.make(milliseconds: 1_790_000_000_000)
        XCTAssertEqual(CustomerID.bytes(id).flatMap(CustomerID.string), id)
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
