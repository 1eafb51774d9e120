import XCTest

@testable import GatewayCrypto

final class WeChatCipherTests: XCTestCase {
    let oaKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
    let oaAppId = "wxb11529c136998cb6"

    func test_encrypt_matchesTencentOfficialAccountVector() throws {
        let cipher = try WeChatCipher(encodingAESKey: oaKey, appId: oaAppId)
        let encrypted = try cipher.encrypt(Array("我是中文abcd123".utf8), random: Array("aaaabbbbccccdddd".utf8))
        XCTAssertEqual(
            encrypted,
            "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==")
    }

    func test_decrypt_tencentOfficialAccountVector() throws {
        let cipher = try WeChatCipher(encodingAESKey: oaKey, appId: oaAppId)
        let plain = try cipher.decrypt(
            base64: "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==")
        XCTAssertEqual(String(decoding: plain, as: UTF8.self), "我是中文abcd123")
    }

    func test_decrypt_tencentWeComHandshakeVector() throws {
        let echostr = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
        XCTAssertTrue(
            WeChatSignature.verify(
                "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", parts: ["QDG6eK", "1409659589", "263014780", echostr]))
        let cipher = try WeChatCipher(encodingAESKey: "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", appId: "wx5823bf96d3bd56c7")
        XCTAssertEqual(String(decoding: try cipher.decrypt(base64: echostr), as: UTF8.self), "1616140317555161061")
    }

    func test_roundTrip_everyPadValueFrom1To32() throws {
        let cipher = try WeChatCipher(encodingAESKey: oaKey, appId: oaAppId)
        var seenPads = Set<Int>()
        // header (20) + appId (18) + n bytes: n = 0..<32 covers every remainder mod 32.
        for n in 0..<32 {
            let message = Array(String(repeating: "x", count: n).utf8)
            let plainLength = 20 + message.count + oaAppId.utf8.count
            seenPads.insert(32 - plainLength % 32)
            let encrypted = try cipher.encrypt(message)
            XCTAssertEqual(try cipher.decrypt(base64: encrypted), message, "message of \(n) bytes")
        }
        XCTAssertEqual(seenPads, Set(1...32))
    }

    func test_roundTrip_multibyteMessageLengthCountsUTF8Bytes() throws {
        let cipher = try WeChatCipher(encodingAESKey: oaKey, appId: oaAppId)
        let message = "<xml><Content><![CDATA[你好，世界 👋]]></Content></xml>"
        XCTAssertEqual(String(decoding: try cipher.decrypt(base64: try cipher.encrypt(message)), as: UTF8.self), message)
    }

    func test_encrypt_usesFreshRandomPrefixEachTime() throws {
        let cipher = try WeChatCipher(encodingAESKey: oaKey, appId: oaAppId)
        XCTAssertNotEqual(try cipher.encrypt("same"), try cipher.encrypt("same"))
    }

    func test_decrypt_rejectsWrongAppId() throws {
        let sender = try WeChatCipher(encodingAESKey: oaKey, appId: "wxOTHER")
        let receiver = try WeChatCipher(encodingAESKey: oaKey, appId: oaAppId)
        XCTAssertThrowsError(try receiver.decrypt(base64: try sender.encrypt("hi"))) {
            XCTAssertEqual(($0 as? CryptoError)?.code, .appIdMismatch)
        }
    }

    func test_decrypt_rejectsWrongKey() throws {
        let sender = try WeChatCipher(encodingAESKey: "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", appId: oaAppId)
        let receiver = try WeChatCipher(encodingAESKey: oaKey, appId: oaAppId)
        // A wrong key yields garbage: almost always bad padding, otherwise a bad length or appId.
        XCTAssertThrowsError(try receiver.decrypt(base64: try sender.encrypt("hello")))
    }

    func test_decrypt_rejectsMalformedInput() throws {
        let cipher = try WeChatCipher(encodingAESKey: oaKey, appId: oaAppId)
        XCTAssertThrowsError(try cipher.decrypt(base64: "not base64!!")) { XCTAssertEqual(($0 as? CryptoError)?.code, .invalidBase64) }
        XCTAssertThrowsError(try cipher.decrypt(base64: "")) { XCTAssertEqual(($0 as? CryptoError)?.code, .invalidCiphertext) }
        XCTAssertThrowsError(try cipher.decrypt(base64: "AAAAAAAAAAAAAAAAAAAA")) {  // 15 bytes
            XCTAssertEqual(($0 as? CryptoError)?.code, .invalidCiphertext)
        }
    }

    func test_unpad_validatesPadValuesAndBytes() throws {
        XCTAssertEqual(try WeChatCipher.unpad([1, 2, 3, 2, 2]), [1, 2, 3])
        XCTAssertEqual(try WeChatCipher.unpad([UInt8](repeating: 32, count: 32)), [])
        XCTAssertThrowsError(try WeChatCipher.unpad([1, 2, 0]))  // 0 is never a pad value
        XCTAssertThrowsError(try WeChatCipher.unpad([UInt8](repeating: 33, count: 64)))  // above 32
        XCTAssertThrowsError(try WeChatCipher.unpad([9, 9, 3, 1, 3]))  // inconsistent pad bytes
        XCTAssertEqual(WeChatCipher.pad([UInt8](repeating: 0, count: 32)).count, 64)  // full block of 32
    }

    func test_init_rejectsKeysOfTheWrongShape() {
        XCTAssertThrowsError(try WeChatCipher(encodingAESKey: "short", appId: "x"))
        XCTAssertThrowsError(try WeChatCipher(encodingAESKey: String(repeating: "!", count: 43), appId: "x"))
    }
}
