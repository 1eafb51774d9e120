import Foundation
import XCTest

@testable import GatewayCore

final class InboundMessageTests: XCTestCase {
    func msg(_ type: String, _ extra: String) throws -> InboundMessage {
        try InboundMessage.parse(Array("<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1700000000</CreateTime><MsgType>\(type)</MsgType>\(extra)</xml>".utf8))
    }

    func test_kinds_ofEveryMessageTypeAndEvent() throws {
        for t in ["text", "image", "voice", "video", "shortvideo", "location", "link"] {
            XCTAssertEqual(try msg(t, "<MsgId>1</MsgId>").kind, .message(t))
            XCTAssertEqual(try msg(t, "<MsgId>1</MsgId>").interactionType, "message.\(t)")
        }
        for e in ["subscribe", "unsubscribe", "SCAN", "LOCATION", "CLICK", "VIEW", "TEMPLATESENDJOBFINISH", "MASSSENDJOBFINISH"] {
            XCTAssertEqual(try msg("event", "<Event>\(e)</Event>").kind, .event(e))
        }
        XCTAssertEqual(try msg("event", "<Event>change_external_contact</Event><ChangeType>del_follow_user</ChangeType>").kind, .externalContact("del_follow_user"))
        XCTAssertEqual(try msg("event", "<Event>weapp_audit_success</Event>").kind, .unknown)
        XCTAssertEqual(try msg("miniprogrampage", "").interactionType, "unknown.miniprogrampage")
    }

    func test_dedupKey_usesMsgIdOrMsgIDElseSenderTimeEventAndKey() throws {
        XCTAssertEqual(try msg("text", "<MsgId>42</MsgId>").dedupKey, "m:42")
        XCTAssertEqual(try msg("event", "<Event>TEMPLATESENDJOBFINISH</Event><MsgID>77</MsgID>").dedupKey, "m:77")
        let click = try msg("event", "<Event>CLICK</Event><EventKey>menu1</EventKey>")
        XCTAssertEqual(click.dedupKey, "e:o1|1700000000|event|CLICK|menu1")
        XCTAssertNotEqual(click.dedupKey, try msg("event", "<Event>CLICK</Event><EventKey>menu2</EventKey>").dedupKey)
    }

    func test_scene_fromSubscribeQrsceneAndScan() throws {
        XCTAssertEqual(try msg("event", "<Event>subscribe</Event><EventKey>qrscene_expo</EventKey>").scene, "expo")
        XCTAssertEqual(try msg("event", "<Event>SCAN</Event><EventKey>expo</EventKey>").scene, "expo")
        XCTAssertNil(try msg("event", "<Event>subscribe</Event><EventKey></EventKey>").scene)
    }

    func test_customerID_isSortableAndValid() {
        let a = ULID.make(milliseconds: 1_700_000_000_000)
        let b = ULID.make(milliseconds: 1_700_000_000_001)
        XCTAssertTrue(ULID.isValid(a))
        XCTAssertLessThan(a, b)
        XCTAssertNotEqual(ULID.make(milliseconds: 5), ULID.make(milliseconds: 5))
        XCTAssertFalse(ULID.isValid("not-an-id"))
    }

    func test_identityInput_normalisesPhoneAndEmail() throws {
        XCTAssertEqual(try IdentityInput.e164("+86 138-0013-8000"), "+8613800138000")
        XCTAssertThrowsError(try IdentityInput.e164("13800138000"))
        XCTAssertThrowsError(try IdentityInput.e164("+0123456789"))
        XCTAssertEqual(try IdentityInput.email("Ann@Example.COM"), "ann@example.com")
        XCTAssertThrowsError(try IdentityInput.email("no-at-sign"))
        XCTAssertThrowsError(try IdentityInput.make(type: "openid", value: "o1", account: nil))
        XCTAssertEqual(Identity(storageForm: "openid:demo:o:1"), Identity(kind: .openid, account: "demo", value: "o:1"))
    }
}

final class JSONTextTests: XCTestCase {
    func test_quote_escapesWhatJSONNeedsAndRoundTripsThroughJSONSerialization() throws {
        let samples = ["plain", "quote \" backslash \\ newline \n tab \t cr \r", "ctl \u{01}\u{1F}", "中文 ✓ 👋", "sep \u{2028} \u{2029}", ""]
        for s in samples {
            let quoted = JSONText.quote(s)
            let decoded = try JSONSerialization.jsonObject(with: Data("[\(quoted)]".utf8)) as? [String]
            XCTAssertEqual(decoded, [s], quoted)
            XCTAssertFalse(quoted.contains("\u{2028}"))
        }
        XCTAssertEqual(JSONText.quote("a\"b"), "\"a\\\"b\"")
    }
}
