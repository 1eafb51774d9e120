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
