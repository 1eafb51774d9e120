import GatewayCrypto
import XCTest

@testable import GatewayCore

/// Message ids: a plain ULID on a single Redis, `<tag>.<ULID>` in the recipient's slot on a cluster,
/// and link tokens that carry a cluster id's slot back.
final class MessageIdTests: XCTestCase {
    let ulid = ULID.make(milliseconds: 1_790_000_000_000)

    func test_aClusterId_isInItsRecipientsSlot_andASingleRedisIdIsUnchanged() {
        XCTAssertEqual(MessageId.make(ulid, recipient: "01J0CUSTOMER0000000000000A", layout: .single), ulid)
        XCTAssertEqual(Keys.message(ulid), "msg:{\(ulid)}", "single-Redis keys keep their name")
        for recipient in ["01J0CUSTOMER0000000000000A", "sms:+8613800138000", "email:a}b@example.com"] {
            let id = MessageId.make(ulid, recipient: recipient, layout: .perSlot)
            XCTAssertTrue(id.hasSuffix("." + ulid))
            XCTAssertTrue(MessageId.isValid(id), id)
            XCTAssertEqual(HashSlot.of(Keys.message(id)), HashSlot.of(Keys.contactHistory(recipient)), "\(recipient): the message and the history share a slot")
        }
        let customer = "01J0CUSTOMER0000000000000A"
        let id = MessageId.make(ulid, recipient: customer, layout: .perSlot)
        XCTAssertEqual(HashSlot.of(Keys.message(id)), HashSlot.of(Keys.customerMessages(customer)))
        XCTAssertEqual(HashSlot.of(Keys.message(id)), HashSlot.of(Keys.customerCampaigns(customer)))
        for bad in ["", "x.\(ulid)", "S1.\(ulid)", "s1.", "s1.not-a-ulid", "s1x2y3z4w.\(ulid)", "\(ulid).s1"] {
            XCTAssertFalse(MessageId.isValid(bad), bad)
        }
    }

    func test_linkTokens_carryAClusterIdsSlot_underTheMAC() throws {
        let tokens = LinkTokens(keys: try XCTUnwrap(LinkKeys(secret: "the-first-secret-0123456789")), publicURL: "https://gw")
        let id = MessageId.make(ulid, recipient: "01J0CUSTOMER0000000000000A", layout: .perSlot)
        let token = try XCTUnwrap(tokens.token(messageId: id, index: 3))
        XCTAssertEqual(token.count, 34)
        XCTAssertTrue(tokens.verify(token)! == (id, 3))
        XCTAssertEqual(try XCTUnwrap(tokens.token(messageId: ulid, index: 3)).count, 31, "a single Redis's tokens keep their format")
        for i in 0..<token.count {
            var chars = Array(token)
            chars[i] = chars[i] == "A" ? "B" : "A"
            XCTAssertNil(tokens.verify(String(chars)), "changed at \(i)")
        }
        let rotated = LinkTokens(keys: try XCTUnwrap(LinkKeys(secret: "the-second-secret-0123456789", version: 2)), publicURL: "https://gw")
        let versioned = try XCTUnwrap(rotated.token(messageId: id, index: 0))
        XCTAssertEqual(versioned.count, 35)
        XCTAssertTrue(rotated.verify(versioned)! == (id, 0))
    }
}
