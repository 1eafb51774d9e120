import GatewayCore
import XCTest

final class MIMEMessageTests: XCTestCase {
    private func render(_ m: MIMEMessage) throws -> String { String(decoding: try m.render(boundarySeed: "B"), as: UTF8.self) }

    func test_lineBreaksInHeaders_areRefused() {
        var m = MIMEMessage(from: MailAddress("a@x.org"), to: [MailAddress("b@y.org")], subject: "Hi\r\nBcc: victim@z.org", text: "t", dateMs: 0)
        XCTAssertThrowsError(try m.render()) { XCTAssertEqual($0 as? MIMEError, .lineBreakInHeader("Subject")) }
        m.subject = "ok"
        m.headers = [("X-Campaign", "c1\nBcc: v@z.org")]
        XCTAssertThrowsError(try m.render()) { XCTAssertEqual($0 as? MIMEError, .lineBreakInHeader("X-Campaign")) }
        m.headers = []
        m.from = MailAddress("a@x.org", name: "Shop\r\nBcc: v@z.org")
        XCTAssertThrowsError(try m.render()) { XCTAssertEqual($0 as? MIMEError, .lineBreakInHeader("display name")) }
        m.from = MailAddress("a@x.org", name: String(repeating: "上海旗舰店", count: 12))
        XCTAssertNoThrow(try m.render(), "a long display name is folded into several encoded words")
        m.to = [MailAddress("b@y.org>, evil@z.org")]
        XCTAssertThrowsError(try m.render()) { XCTAssertEqual($0 as? MIMEError, .invalidAddress("b@y.org>, evil@z.org")) }
    }

    func test_nonASCIISubject_becomesEncodedWordsOfAtMost75Characters() throws {
        let subject = String(repeating: "限时优惠", count: 20)
        let text = try render(MIMEMessage(from: MailAddress("a@x.org"), to: [MailAddress("b@y.org")], subject: subject, text: "t", dateMs: 0))
        let header = try XCTUnwrap(text.components(separatedBy: "\r\n\r\n").first)
        let subjectLines = header.components(separatedBy: "\r\n").drop { !$0.hasPrefix("Subject:") }.prefix { $0.hasPrefix("Subject:") || $0.hasPrefix(" ") }
        XCTAssertGreaterThan(subjectLines.count, 1, "folded")
        for line in subjectLines {
            let word = line.replacingOccurrences(of: "Subject: ", with: "").trimmingCharacters(in: .whitespaces)
            XCTAssertTrue(word.hasPrefix("=?UTF-8?B?") && word.hasSuffix("?="))
            XCTAssertLessThanOrEqual(word.count, 75)
        }
    }

    func test_textOnlyMessage_isOneBase64Part_andASCIIStaysReadable() throws {
        let text = try render(
            MIMEMessage(from: MailAddress("a@x.org", name: "Shop"), to: [MailAddress("b@y.org")], subject: "Plain subject", text: "hello", dateMs: 0))
        XCTAssertTrue(text.contains("From: Shop <a@x.org>\r\n"))
        XCTAssertTrue(text.contains("Subject: Plain subject\r\n"))
        XCTAssertTrue(text.contains("Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n"))
        XCTAssertTrue(text.contains("Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n"))
        XCTAssertFalse(text.contains("multipart"))
    }
}
