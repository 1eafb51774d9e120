import XCTest

@testable import GatewayCore

final class StrictXMLTests: XCTestCase {
    func test_parse_keepsCDATAAndTextByteForByte_andDecodesPredefinedEntities() throws {
        let xml = "<xml><A><![CDATA[a & <b> ]] ok]]></A><B>x &amp; y &lt;z&gt; &#20320;&#x597D; &quot;q&apos;</B><C>  padded  </C></xml>"
        let m = try InboundMessage.parse(Array(xml.utf8))
        XCTAssertEqual(m["A"], "a & <b> ]] ok")
        XCTAssertEqual(m["B"], "x & y <z> 你好 \"q'")
        XCTAssertEqual(m["C"], "  padded  ")
    }

    func test_parse_mixedCDATAAndText_concatenates() throws {
        let m = try InboundMessage.parse(Array("<xml><A>pre<![CDATA[ mid ]]>post</A></xml>".utf8))
        XCTAssertEqual(m["A"], "pre mid post")
    }

    func test_parse_refusesDeclarationsEntitiesAndProcessingInstructions() {
        for bad in [
            "<!DOCTYPE xml><xml/>", "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]><xml/>", "<xml><!ENTITY a \"b\"></xml>",
            "<xml><A>&a;</A></xml>", "<xml><?php x ?></xml>", "<xml><A>&#0;</A></xml>",
        ] {
            XCTAssertThrowsError(try StrictXML.parse(bad), bad)
        }
        XCTAssertTrue((try? StrictXML.parse("<!DOCTYPE xml><xml/>")) == nil)
        do {
            _ = try StrictXML.parse("<!DOCTYPE xml><xml/>")
        } catch let e as XMLParseError {
            XCTAssertTrue(e.isDeclaration)
        } catch { XCTFail("\(error)") }
    }

    func test_parse_refusesMalformedDocuments() {
        for bad in ["", "<xml>", "<xml></XML>", "<xml><A></B></xml>", "<xml/><xml/>", "text<xml/>", "<xml a=1/>", "<xml>]]></xml>", "<1a/>"] {
            XCTAssertThrowsError(try StrictXML.parse(bad), bad)
        }
    }

    func test_parse_refusesInvalidUTF8AndControlCharacters() {
        XCTAssertThrowsError(try StrictXML.parse([UInt8]("<xml><A>".utf8) + [0xC3, 0x28] + [UInt8]("</A></xml>".utf8)))
        XCTAssertThrowsError(try StrictXML.parse([UInt8]("<xml><A><![CDATA[".utf8) + [0xFF] + [UInt8]("]]></A></xml>".utf8)))
        XCTAssertThrowsError(try StrictXML.parse([UInt8]("<xml><A>".utf8) + [0x01] + [UInt8]("</A></xml>".utf8)))
    }

    func test_parse_refusesNestingDeeperThanTheLimit() {
        let deep = String(repeating: "<a>", count: 40) + String(repeating: "</a>", count: 40)
        XCTAssertThrowsError(try StrictXML.parse("<xml>" + deep + "</xml>"))
    }

    func test_flatten_nestedAndRepeatedElements() throws {
        let xml = "<xml><ScanCodeInfo><ScanType>qrcode</ScanType><ScanResult>1</ScanResult></ScanCodeInfo><L><item>a</item><item>b</item></L></xml>"
        let m = try InboundMessage.parse(Array(xml.utf8))
        XCTAssertEqual(m["ScanCodeInfo.ScanResult"], "1")
        XCTAssertEqual(m["L.item[0]"], "a")
        XCTAssertEqual(m["L.item[1]"], "b")
    }

    func test_replyCDATA_splitsTerminatorSoItRoundTrips() throws {
        let content = "a]]>b]]>"
        let xml = "<xml><Content>\(ReplyXML.cdata(content))</Content></xml>"
        XCTAssertEqual(try InboundMessage.parse(Array(xml.utf8))["Content"], content)
    }
}
