import Foundation
import GatewayCore
import GatewayCrypto
import Hummingbird
import HummingbirdTesting
import NIOCore
import XCTest

/// Every rejection: a non-2xx below 500, a JSON error without internals, and nothing stored.
final class BadInputTests: XCTestCase {
    struct Case: Sendable {
        let name: String
        let expected: HTTPResponse.Status
        let code: String
        let request: @Sendable (Harness) throws -> CallbackBuilder.Request
    }

    static let demoKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"

    static func text(_ h: Harness, msgId: String = "9001") -> String {
        SampleCallbacks.text(to: "gh_demo", from: "oBAD", content: "hello", msgId: msgId, createTime: h.nowSeconds)
    }

    /// An encrypted callback for `demo` whose Encrypt is `encrypt`, correctly signed over it.
    static func signedEnvelope(_ h: Harness, encrypt: String) -> CallbackBuilder.Request {
        let ts = String(h.nowSeconds)
        let nonce = freshNonce()
        let q = CallbackBuilder.encode([
            ("signature", WeChatSignature.compute(["pamtest", ts, nonce])), ("timestamp", ts), ("nonce", nonce), ("encrypt_type", "aes"),
            ("msg_signature", WeChatSignature.compute(["pamtest", ts, nonce, encrypt])),
        ])
        return .init(pathAndQuery: "/webhooks/wechat/demo?" + q, body: "<xml><Encrypt><![CDATA[\(encrypt)]]></Encrypt></xml>")
    }

    static func plainSigned(_ h: Harness, body: String, account: String = "demo") throws -> CallbackBuilder.Request {
        try h.builder(account).post(xml: body, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false)
    }

    static let cases: [Case] = [
        Case(name: "missing signature", expected: .unauthorized, code: "missing_signature") { h in
            let r = try plainSigned(h, body: text(h))
            return .init(pathAndQuery: r.pathAndQuery.replacingOccurrences(of: "signature=", with: "sig="), body: r.body)
        },
        Case(name: "missing timestamp", expected: .unauthorized, code: "missing_signature") { h in
            let r = try plainSigned(h, body: text(h))
            return .init(pathAndQuery: r.pathAndQuery.replacingOccurrences(of: "timestamp=", with: "ts="), body: r.body)
        },
        Case(name: "bad signature", expected: .forbidden, code: "bad_signature") { h in
            let r = try plainSigned(h, body: text(h))
            return .init(pathAndQuery: r.pathAndQuery.replacingOccurrences(of: "signature=", with: "signature=00"), body: r.body)
        },
        Case(name: "signature from another token", expected: .forbidden, code: "bad_signature") { h in
            var account = h.config.account("demo")!
            account.token = "othertoken"
            return try CallbackBuilder(account: account).post(xml: text(h), timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false)
        },
        Case(name: "timestamp too old", expected: .forbidden, code: "stale_timestamp") { h in
            try h.builder("demo").post(xml: text(h), timestamp: h.nowSeconds - 301, nonce: freshNonce(), encrypt: false)
        },
        Case(name: "timestamp in the future", expected: .forbidden, code: "stale_timestamp") { h in
            try h.builder("demo").post(xml: text(h), timestamp: h.nowSeconds + 301, nonce: freshNonce(), encrypt: false)
        },
        Case(name: "non-numeric timestamp", expected: .badRequest, code: "bad_timestamp") { h in
            let r = try plainSigned(h, body: text(h))
            return .init(pathAndQuery: r.pathAndQuery.replacingOccurrences(of: "timestamp=", with: "timestamp=x"), body: r.body)
        },
        Case(name: "wrong appId trailer", expected: .forbidden, code: "appid_mismatch") { h in
            var account = h.config.account("demo")!
            account.appId = "wxSOMEONEELSE0001"
            return try CallbackBuilder(account: account).post(xml: text(h), timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: true)
        },
        Case(name: "wrong key", expected: .badRequest, code: "decrypt_failed") { h in
            var account = h.config.account("demo")!
            account.encodingAESKey = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
            return try CallbackBuilder(account: account).post(xml: text(h), timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: true)
        },
        Case(name: "ciphertext not a block multiple", expected: .badRequest, code: "decrypt_failed") { h in
            signedEnvelope(h, encrypt: Data(repeating: 7, count: 40).base64EncodedString())
        },
        Case(name: "ciphertext not base64", expected: .badRequest, code: "decrypt_failed") { h in signedEnvelope(h, encrypt: "%%%not-base64%%%") },
        Case(name: "bad padding", expected: .badRequest, code: "decrypt_failed") { h in
            // Encrypt a block whose last byte is 0 (never a valid pad) with OpenSSL's own raw AES.
            let cipher = try WeChatCipher(encodingAESKey: demoKey, appId: "wxb11529c136998cb6")
            let good = try cipher.encrypt("x")
            var bytes = Array(Data(base64Encoded: good)!)
            bytes[bytes.count - 1] ^= 0xFF  // corrupts the last block: its padding no longer validates
            return signedEnvelope(h, encrypt: Data(bytes).base64EncodedString())
        },
        Case(name: "encrypted envelope without Encrypt", expected: .badRequest, code: "malformed_body") { h in
            let r = signedEnvelope(h, encrypt: "abc")
            return .init(pathAndQuery: r.pathAndQuery, body: "<xml><ToUserName>x</ToUserName></xml>")
        },
        Case(name: "malformed XML", expected: .badRequest, code: "malformed_xml") { h in try plainSigned(h, body: "<xml><ToUserName>x</xml>") },
        Case(name: "not XML at all", expected: .badRequest, code: "malformed_xml") { h in try plainSigned(h, body: "{\"json\": true}") },
        Case(name: "wrong root element", expected: .badRequest, code: "malformed_xml") { h in try plainSigned(h, body: "<root><A>1</A></root>") },
        Case(name: "DOCTYPE", expected: .badRequest, code: "xml_declaration") { h in
            try plainSigned(h, body: "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY x \"boom\">]><xml><Content>&x;</Content></xml>")
        },
        Case(name: "DOCTYPE inside an encrypted payload", expected: .badRequest, code: "xml_declaration") { h in
            try h.builder("demo").post(xml: "<!DOCTYPE xml SYSTEM \"file:///etc/passwd\"><xml/>", timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: true)
        },
        Case(name: "undeclared entity", expected: .badRequest, code: "malformed_xml") { h in
            try plainSigned(h, body: "<xml><ToUserName>a</ToUserName><Content>&xxe;</Content></xml>")
        },
        Case(name: "control character", expected: .badRequest, code: "malformed_xml") { h in
            try plainSigned(h, body: "<xml><Content>\u{FFFD}</Content></xml>".replacingOccurrences(of: "\u{FFFD}", with: "\u{0000}"))
        },
        Case(name: "unknown account", expected: .notFound, code: "not_found") { h in
            let r = try plainSigned(h, body: text(h))
            return .init(pathAndQuery: r.pathAndQuery.replacingOccurrences(of: "/demo?", with: "/nobody?"), body: r.body)
        },
        Case(name: "wechat account on the wecom route", expected: .notFound, code: "not_found") { h in
            let r = try plainSigned(h, body: text(h))
            return .init(pathAndQuery: r.pathAndQuery.replacingOccurrences(of: "/wechat/", with: "/wecom/"), body: r.body)
        },
        Case(name: "encrypted request to a plain-mode account", expected: .badRequest, code: "encryption_not_configured") { h in
            var account = h.config.account("demo")!
            account.id = "plain"
            account.token = "plaintoken"
            return try CallbackBuilder(account: account).post(xml: text(h), timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: true)
        },
        Case(name: "body over 64 KiB", expected: .contentTooLarge, code: "body_too_large") { h in
            try plainSigned(h, body: SampleCallbacks.text(to: "gh", from: "oBIG", content: String(repeating: "x", count: 70_000), msgId: "1", createTime: h.nowSeconds))
        },
    ]

    func test_everyRejection_hasItsStatusAndCode_storesNothing_andServiceStaysUp() async throws {
        let h = try Harness()
        try await h.test { client in
            for c in Self.cases {
                let before = try await h.dbSize()
                let r = try await client.callback(try c.request(h))
                XCTAssertEqual(r.status, c.expected, c.name)
                XCTAssertEqual(r.errorCode, c.code, "\(c.name): \(r.text)")
                XCTAssertFalse(r.text.lowercased().contains("redis") || r.text.contains("Error("), "\(c.name) leaks internals: \(r.text)")
                let after = try await h.dbSize()
                XCTAssertEqual(after, before, "\(c.name) stored something")
            }
            // Still serving after all of that.
            let ok = try await client.callback(try Self.plainSigned(h, body: Self.text(h, msgId: "9999")))
            XCTAssertEqual(ok.status, .ok)
        }
    }

    /// An identical request (a platform retry, a proxy resend) is answered as the first and stored once;
    /// the same timestamp, nonce and signature with another body is a replay wherever the signature
    /// leaves the body out (plain, compat); where it covers the body only the envelope can change.
    func test_identicalRequestIsARetry_anotherBodyIsAReplay_inPlainCompatAndSafeMode() async throws {
        let h = try Harness()
        try await h.test { client in
            var msg = 8000
            func text(_ content: String = "hello there") -> String {
                msg += 1
                return SampleCallbacks.text(to: "gh", from: "oRETRY", content: content, msgId: "\(msg)", createTime: h.nowSeconds)
            }
            for (account, encrypt) in [("plain", false), ("demo", false), ("demo", true), ("safe", true), ("corp", true)] {
                let what = "\(account) \(encrypt ? "encrypted" : "plain")"
                let first = try h.builder(account).post(xml: text(), timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: encrypt)
                let r1 = try await client.callback(first)
                XCTAssertEqual(r1.status, .ok, what)
                let before = try await h.inboundLength()
                let retry = try await client.callback(first)
                XCTAssertEqual(retry.status, .ok, "\(what): an identical request is a retry")
                if !encrypt { XCTAssertEqual(retry.text, r1.text, "\(what): the retry gets the first reply") }
                let afterRetry = try await h.inboundLength()
                XCTAssertEqual(afterRetry, before, "\(what): stored once")

                // Same query (timestamp, nonce, signatures), another body.
                let other = try h.builder(account).post(xml: text("something else"), timestamp: h.nowSeconds, nonce: "x", encrypt: encrypt)
                let tampered = CallbackBuilder.Request(pathAndQuery: first.pathAndQuery, body: other.body)
                let r2 = try await client.callback(tampered)
                XCTAssertEqual(r2.status, .forbidden, what)
                XCTAssertTrue(["replayed", "bad_signature"].contains(r2.errorCode ?? ""), "\(what): \(r2.text)")
                // The very body with a byte of padding is another body too. Where the signature covers
                // the body (WeCom, WeChat safe mode) the callback's dedup key is its only key: the same
                // signed content is the same message, answered as a duplicate with the first reply.
                let padded = CallbackBuilder.Request(pathAndQuery: first.pathAndQuery, body: first.body + " ")
                let r3 = try await client.callback(padded)
                if ["safe", "corp"].contains(account) {
                    XCTAssertEqual(r3.status, .ok, what)
                    XCTAssertEqual(r3.text, r1.text, "\(what): a duplicate gets the first reply")
                } else {
                    XCTAssertEqual(r3.status, .forbidden, what)
                    XCTAssertEqual(r3.errorCode, "replayed", what)
                }
                let after = try await h.inboundLength()
                XCTAssertEqual(after, before, "\(what): nothing stored for a replay")
            }

            // Compat mode: an encrypted request's plain `signature` (token, timestamp, nonce) replayed as a
            // plain request with a forged body is refused: the guard is the timestamp and nonce, not the signature used.
            let encrypted = try h.builder("demo").post(xml: text(), timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: true)
            let original = try await client.callback(encrypted)
            XCTAssertEqual(original.status, .ok)
            let query = encrypted.pathAndQuery.split(separator: "?")[1].split(separator: "&").filter { !$0.hasPrefix("encrypt_type") && !$0.hasPrefix("msg_signature") }
            let downgraded = CallbackBuilder.Request(pathAndQuery: "/webhooks/wechat/demo?" + query.joined(separator: "&"), body: text("forged"))
            let forged = try await client.callback(downgraded)
            XCTAssertEqual(forged.status, .forbidden)
            XCTAssertEqual(forged.errorCode, "replayed")
            let metrics = try await client.get("/metrics", token: nil)
            // Identical retries where a nonce key guards (plain, demo plain, demo encrypted); the safe and
            // WeCom ones are answered by their dedup key (counted with the other suites' duplicates).
            XCTAssertTrue(metrics.text.contains("scrm_webhook_identical_retries_total 3"), "retries are counted")
        }
    }

    func test_timestampWindow_isConfigurable() async throws {
        let h = try Harness()
        var config = h.config
        config.webhooks.timestampWindowSeconds = 10
        let account = config.account("demo")!
        let app = App.buildApplication(config: config, redis: h.redis, adapters: try loadAdapters(config: config, environment: [:]), clock: { 1_790_000_000_000 })
        try await app.test(.router) { client in
            let late = try CallbackBuilder(account: account).post(xml: Self.text(h), timestamp: 1_790_000_000 - 11, nonce: freshNonce(), encrypt: false)
            let r = try await client.callback(late)
            XCTAssertEqual(r.status, .forbidden)
            let fine = try CallbackBuilder(account: account).post(xml: Self.text(h), timestamp: 1_790_000_000 - 9, nonce: freshNonce(), encrypt: false)
            let r2 = try await client.callback(fine)
            XCTAssertEqual(r2.status, .ok)
        }
    }
}

import App
