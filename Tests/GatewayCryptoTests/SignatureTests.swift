import XCTest

@testable import GatewayCrypto

final class SignatureTests: XCTestCase {
    func test_signature_sortsPartsByBytesBeforeHashing() {
        // sha1("1409659589263014780QDG6eK"): the digits sort before the capital letters.
        XCTAssertEqual(WeChatSignature.compute(["QDG6eK", "1409659589", "263014780"]), Digest.sha1Hex("1409659589263014780QDG6eK"))
        XCTAssertEqual(WeChatSignature.compute(["b", "a", "c"]), WeChatSignature.compute(["c", "b", "a"]))
    }

    func test_verify_acceptsUpperCaseHexAndRejectsOneChangedCharacter() {
        let sig = WeChatSignature.compute(["pamtest", "1700000000", "nonce"])
        XCTAssertTrue(WeChatSignature.verify(sig.uppercased(), parts: ["pamtest", "1700000000", "nonce"]))
        var tampered = Array(sig)
        tampered[10] = tampered[10] == "a" ? "b" : "a"
        XCTAssertFalse(WeChatSignature.verify(String(tampered), parts: ["pamtest", "1700000000", "nonce"]))
        XCTAssertFalse(WeChatSignature.verify("", parts: ["pamtest", "1700000000", "nonce"]))
    }

    func test_hmac_matchesRFC4231AndRFC2202Vectors() {
        let key = [UInt8](repeating: 0x0b, count: 20)
        XCTAssertEqual(
            Hex.encode(HMAC.sha256(key: key, data: Array("Hi There".utf8))),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        XCTAssertEqual(Hex.encode(HMAC.sha1(key: key, data: Array("Hi There".utf8))), "b617318655057264e28bc0b6fb378c8ef146be00")
    }

    func test_constantTimeEquals() {
        XCTAssertTrue(ConstantTime.equals("abc", "abc"))
        XCTAssertFalse(ConstantTime.equals("abc", "abd"))
        XCTAssertFalse(ConstantTime.equals("abc", "abcd"))
        XCTAssertTrue(ConstantTime.equals("", ""))
    }

    func test_secureRandom_alphanumericHasRequestedLengthAndAlphabet() {
        let s = SecureRandom.alphanumeric(40)
        XCTAssertEqual(s.count, 40)
        XCTAssertTrue(s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) })
        XCTAssertNotEqual(SecureRandom.bytes(16), SecureRandom.bytes(16))
    }
}
