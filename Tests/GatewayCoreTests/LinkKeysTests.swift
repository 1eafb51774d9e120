import Foundation
import GatewayCrypto
import XCTest

@testable import GatewayCore

/// Unsubscribe and tracked-link tokens: nothing readable in them, and a secret that rotates by version
/// without breaking links already sent.
final class LinkKeysTests: XCTestCase {
    let old = "the-first-secret-0123456789"
    let new = "the-second-secret-0123456789"

    func test_unsubscribeTokens_holdNoReadableAddress_andRefuseChanges() throws {
        let links = try XCTUnwrap(UnsubscribeLinks(secret: old, publicURL: "https://gw.example.com"))
        for address in ["+8613800138000", "ada.lovelace@example.com", "oFANopenid0001"] {
            let token = links.token(channel: "sms", address: address)
            XCTAssertTrue(links.verify(token)! == ("sms", address))
            let decoded = token.split(separator: ".").compactMap { Base64URL.decode(String($0)) }.map { String(decoding: $0, as: UTF8.self) }
            for text in [token] + decoded {
                XCTAssertFalse(text.contains(address), "\(address) is readable in \(token)")
                XCTAssertFalse(text.contains(String(address.dropFirst().prefix(6))), "part of \(address) is readable")
            }
            XCTAssertNotEqual(links.token(channel: "sms", address: address), token, "a fresh nonce each time: two links do not show they are for one person")
            for i in 0..<token.count where Array(token)[i] != "." {
                var chars = Array(token)
                chars[i] = chars[i] == "A" ? "B" : "A"
                XCTAssertNil(links.verify(String(chars)), "changed at \(i)")
            }
        }
        XCTAssertNil(UnsubscribeLinks(secret: new, publicURL: "x")!.verify(links.token(channel: "email", address: "a@example.com")))
    }

    func test_firstFormatTokens_alreadySent_stillVerify() throws {
        // The first format: base64url("channel|address") + "." + 128 bits of HMAC-SHA256 with the secret.
        let payload = "email|ada@example.com"
        let mac = String(Hex.encode(HMAC.sha256(key: Array(old.utf8), data: Array(payload.utf8))).prefix(32))
        let legacy = Base64URL.encode(Array(payload.utf8)) + "." + mac
        let links = try XCTUnwrap(UnsubscribeLinks(secret: old, publicURL: "https://gw.example.com"))
        XCTAssertTrue(links.verify(legacy)! == ("email", "ada@example.com"))
        let rotated = UnsubscribeLinks(keys: try XCTUnwrap(LinkKeys(secret: new, version: 2, retired: [1: old])), publicURL: "https://gw.example.com")
        XCTAssertTrue(rotated.verify(legacy)! == ("email", "ada@example.com"), "version 1 retired still verifies its links")
        XCTAssertNil(UnsubscribeLinks(keys: try XCTUnwrap(LinkKeys(secret: new, version: 2)), publicURL: "x").verify(legacy))
    }

    func test_rotation_newTokensCarryTheNewVersion_oldOnesWorkUntilRetiredSecretIsDropped() throws {
        let v1Keys = try XCTUnwrap(LinkKeys(secret: old))
        let v2Keys = try XCTUnwrap(LinkKeys(secret: new, version: 2, retired: [1: old]))
        let v2Only = try XCTUnwrap(LinkKeys(secret: new, version: 2))
        let id = ULID.make(milliseconds: 1_790_000_000_000)

        let before = try XCTUnwrap(LinkTokens(keys: v1Keys, publicURL: "https://gw").token(messageId: id, index: 2))
        XCTAssertEqual(before.count, 31, "version 1 tokens keep their format")
        let after = try XCTUnwrap(LinkTokens(keys: v2Keys, publicURL: "https://gw").token(messageId: id, index: 2))
        XCTAssertEqual(after.count, 32)
        XCTAssertEqual(after.first, "C", "version 2 in the first character (base64url 2)")
        let rotated = LinkTokens(keys: v2Keys, publicURL: "https://gw")
        XCTAssertTrue(rotated.verify(before)! == (id, 2))
        XCTAssertTrue(rotated.verify(after)! == (id, 2))
        XCTAssertNil(LinkTokens(keys: v2Only, publicURL: "https://gw").verify(before), "dropping the retired secret ends its links")
        XCTAssertNil(LinkTokens(keys: v1Keys, publicURL: "https://gw").verify(after))
        var forgedVersion = Array(after)
        forgedVersion[0] = "D"
        XCTAssertNil(rotated.verify(String(forgedVersion)))

        let unsubscribe = UnsubscribeLinks(keys: v2Keys, publicURL: "https://gw")
        let t1 = UnsubscribeLinks(keys: v1Keys, publicURL: "https://gw").token(channel: "sms", address: "+8613800138000")
        let t2 = unsubscribe.token(channel: "sms", address: "+8613800138000")
        XCTAssertTrue(t1.hasPrefix("1.") && t2.hasPrefix("2."))
        XCTAssertTrue(unsubscribe.verify(t1)! == ("sms", "+8613800138000"))
        XCTAssertTrue(unsubscribe.verify(t2)! == ("sms", "+8613800138000"))
        XCTAssertNil(UnsubscribeLinks(keys: v2Only, publicURL: "https://gw").verify(t1))
    }

    func test_config_rotationKeys() throws {
        let config = try ConfigLoader(environment: [:]).load(yaml: """
            outbound:
              linkSecret: \(new)
              linkSecretVersion: 2
              retiredLinkSecrets: { "1": \(old) }
            """)
        XCTAssertEqual(config.outbound.retiredLinkSecrets, [1: old])
        XCTAssertEqual(LinkKeys(config.outbound)?.version, 2)
        XCTAssertThrowsError(try ConfigLoader(environment: [:]).load(yaml: "outbound: { linkSecret: \(new), linkSecretVersion: 2, retiredLinkSecrets: { \"2\": \(old) } }"))
        XCTAssertThrowsError(try ConfigLoader(environment: [:]).load(yaml: "outbound: { linkSecret: \(new), retiredLinkSecrets: { \"3\": short } }"))
    }
}
