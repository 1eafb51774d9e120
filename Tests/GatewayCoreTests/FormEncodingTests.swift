import GatewayCore
import XCTest

final class FormEncodingTests: XCTestCase {
    func testPairsDecodePlusAndPercentAndKeepOrderAndRepeats() {
        let pairs = FormEncoding.pairs("To=%2B8613900000001&Body=Hi+Fan%2C+%E4%BD%A0%E5%A5%BD&&a=1&a=2&flag&empty=")
        XCTAssertEqual(pairs.map(\.name), ["To", "Body", "a", "a", "flag", "empty"])
        XCTAssertEqual(pairs.map(\.value), ["+8613900000001", "Hi Fan, 你好", "1", "2", "", ""])
        XCTAssertEqual(FormEncoding.decode("a=1&a=2&b=%20+c"), ["a": "2", "b": "  c"])
    }

    func testBrokenPercentEncodingIsKeptAsSent() {
        XCTAssertEqual(FormEncoding.pairs("x=100%&y=%zz+1&z=%C3&w=%4")[...].map(\.value), ["100%", "%zz+1", "%C3", "%4"])
        XCTAssertEqual(FormEncoding.pairs("=v")[0].name, "")
        XCTAssertEqual(FormEncoding.pairs("k=a=b")[0].value, "a=b")
    }
}

extension FormEncodingTests {
    /// Encoding: only RFC 3986's unreserved bytes stay as they are; a round trip gives the pairs back.
    func test_encode_percentEncodesAllButUnreservedBytes_andDecodesBack() {
        XCTAssertEqual(FormEncoding.percentEncode("aZ09-_.~ +&=/%é"), "aZ09-_.~%20%2B%26%3D%2F%25%C3%A9")
        let pairs = [("To", "+8613800000001"), ("Body", "Hi 安娜 & co: 100% sure?"), ("empty", "")]
        let body = FormEncoding.encode(pairs)
        XCTAssertEqual(body, "To=%2B8613800000001&Body=Hi%20%E5%AE%89%E5%A8%9C%20%26%20co%3A%20100%25%20sure%3F&empty=")
        XCTAssertEqual(FormEncoding.pairs(body).map { [$0.name, $0.value] }, pairs.map { [$0.0, $0.1] })
    }
}
