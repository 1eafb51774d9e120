import Foundation
import GatewayCore
import HTTPTransport
import TestSupport
import XCTest

private struct SentAnyway: Error { let recipient: String }

/// SMTP through the curl driver into a real SMTP server (python3-aiosmtpd) on loopback.
final class SMTPTests: XCTestCase {
    private func message(to: String) throws -> [UInt8] {
        var m = MIMEMessage(
            from: MailAddress("news@shop.example", name: "上海旗舰店 Newsletter"), to: [MailAddress(to, name: "Li, Wei")],
            subject: "双十一预告：限时优惠 — your early access to the November sale starts now, don't miss it",
            text: "您好 Li Wei,\n\nOur sale starts at 20:00.\n", html: "<p>您好 <b>Li Wei</b></p><p>Our sale starts at 20:00.</p>",
            dateMs: 1_795_000_000_000)
        m.addUnsubscribe(url: "https://gw.example/u/tok123", mailto: "unsubscribe@shop.example")
        return try m.render()
    }

    func test_multipartUTF8Message_arrivesWithAuthAndParsesCleanly() async throws {
        let sink = try SMTPTestServer(user: "edm", password: "s3cret")
        let transport = HTTPTransport()
        let receipt = try await transport.send(
            mail: MailEnvelope(
                server: sink.url, security: .none, username: "edm", password: "s3cret", from: "news@shop.example",
                recipients: ["liwei@example.com"], message: try message(to: "liwei@example.com")))
        XCTAssertEqual(receipt.replyCode, 250)
        let got = try XCTUnwrap(sink.messages().first)
        XCTAssertEqual(got["auth_user"], "edm")
        XCTAssertEqual(got["mail_from"], "news@shop.example")
        XCTAssertEqual(got.recipients, ["liwei@example.com"])
        XCTAssertEqual(got["subject"], "双十一预告：限时优惠 — your early access to the November sale starts now, don't miss it")
        XCTAssertEqual(got["from"], "上海旗舰店 Newsletter <news@shop.example>")
        XCTAssertEqual(got["to"], "\"Li, Wei\" <liwei@example.com>")
        XCTAssertEqual(got["content_type"], "multipart/alternative")
        XCTAssertEqual(got["plain"], "您好 Li Wei,\n\nOur sale starts at 20:00.\n")
        XCTAssertEqual(got["html"], "<p>您好 <b>Li Wei</b></p><p>Our sale starts at 20:00.</p>")
        XCTAssertEqual(got["list_unsubscribe"], "<https://gw.example/u/tok123>, <mailto:unsubscribe@shop.example>")
        XCTAssertEqual(got["list_unsubscribe_post"], "List-Unsubscribe=One-Click")
        XCTAssertEqual(got["date"], "Wed, 18 Nov 2026 11:06:40 +0000")
        XCTAssertEqual(got.defects, [], "Python's parser found no defects")
        XCTAssertTrue(got.raw.split(separator: "\r\n", omittingEmptySubsequences: false).allSatisfy { $0.utf8.count <= 998 })
        transport.shutdown()
    }

    func test_refusals_carryTheSMTPReplyCode() async throws {
        let sink = try SMTPTestServer(user: "edm", password: "s3cret")
        let transport = HTTPTransport()
        func send(to: String, password: String = "s3cret") async throws -> TransportError {
            do {
                _ = try await transport.send(
                    mail: MailEnvelope(server: sink.url, security: .none, username: "edm", password: password, from: "news@shop.example",
                        recipients: [to], message: try message(to: to)))
                throw SentAnyway(recipient: to)
            } catch let error as TransportError { return error }
        }
        let permanent = try await send(to: "reject-me@example.com")
        XCTAssertEqual(permanent.kind, .refused)
        XCTAssertEqual(permanent.protocolCode, 550)
        XCTAssertTrue(permanent.isRecipientRefusal, "refused at RCPT TO: a hard bounce (\(permanent.message))")
        let transient = try await send(to: "tempfail@example.com")
        XCTAssertEqual(transient.protocolCode, 451)
        let badLogin = try await send(to: "liwei@example.com", password: "wrong")
        XCTAssertEqual(badLogin.kind, .refused)
        XCTAssertEqual(badLogin.protocolCode, 535)
        XCTAssertFalse(badLogin.isRecipientRefusal)
        XCTAssertFalse(transient.isRecipientRefusal)
        XCTAssertEqual(sink.messages().count, 0)
        transport.shutdown()
    }

    func test_startTLSRequired_refusesAServerWithoutTLS() async throws {
        let sink = try SMTPTestServer()
        let transport = HTTPTransport()
        do {
            _ = try await transport.send(
                mail: MailEnvelope(server: sink.url, security: .startTLS, from: "news@shop.example", recipients: ["a@example.com"],
                    message: try message(to: "a@example.com")))
            XCTFail("must not send in clear when STARTTLS is required")
        } catch let error as TransportError {
            XCTAssertEqual(error.curlCode, 64, "CURLE_USE_SSL_FAILED: \(error)")
        }
        XCTAssertEqual(sink.messages().count, 0)
        transport.shutdown()
    }
}
