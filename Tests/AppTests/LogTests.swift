import App
import Foundation
import GatewayCore
import Hummingbird
import HummingbirdTesting
import Logging
import NIOConcurrencyHelpers
import XCTest

/// Structured logs: the JSON line format, and one access line per request that names the route
/// template, status, duration and caller, and never a secret, a query or a body.
final class LogTests: XCTestCase {
    func test_jsonLine_isOneObjectWithEscapedFields() throws {
        let line = JSONLogHandler.line(
            level: .warning, label: "scrm-gateway", message: "a \"quoted\"\nline",
            metadata: ["status": .stringConvertible(503), "route": .string("/webhooks/wechat/{account}"), "tags": .array([.string("a")])],
            at: Date(timeIntervalSince1970: 1_790_000_000))
        XCTAssertFalse(line.contains("\n"))
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(object["level"] as? String, "warning")
        XCTAssertEqual(object["logger"] as? String, "scrm-gateway")
        XCTAssertEqual(object["msg"] as? String, "a \"quoted\"\nline")
        XCTAssertEqual(object["status"] as? Int, 503)
        XCTAssertEqual(object["tags"] as? [String], ["a"])
        XCTAssertEqual(object["ts"] as? String, "2026-09-21T14:13:20.000Z")
    }

    func test_accessLog_oneJSONLinePerRequest_withRouteStatusAndCaller_neverSecrets() async throws {
        let h = try Harness()
        let lines = NIOLockedValueBox<[String]>([])
        var access = Logger(label: "access") { label in JSONLogHandler(label: label) { line in lines.withLockedValue { $0.append(line) } } }
        access.logLevel = .info
        let app = buildApplication(config: h.config, redis: h.redis, adapters: try loadAdapters(config: h.config), clock: h.clock, accessLogger: access)
        try await app.test(.router) { client in
            let key = try await AccessTests.key(client, role: "support")
            _ = try await client.get("/api/v1/customers/lookup?phone=%2B8613800000000", token: key.key)
            let xml = SampleCallbacks.text(to: "gh", from: "oSECRETOPENID", content: "my secret words", msgId: "log-1", createTime: h.nowSeconds)
            _ = try await client.callback(try h.builder("plain").post(xml: xml, timestamp: h.nowSeconds, nonce: "nonce-log-1", encrypt: false))
            _ = try await client.get("/no/such/route", token: nil)
            let records = lines.withLockedValue { $0 }.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            XCTAssertEqual(records.count, 4, "one line per request")
            XCTAssertEqual(records[0]["route"] as? String, "/api/v1/keys")
            XCTAssertEqual(records[0]["actor"] as? String, "bootstrap")
            XCTAssertEqual(records[0]["status"] as? Int, 201)
            XCTAssertEqual(records[1]["route"] as? String, "/api/v1/customers/lookup")
            XCTAssertEqual(records[1]["actor"] as? String, "key:\(key.id)")
            XCTAssertEqual(records[1]["status"] as? Int, 404)
            XCTAssertEqual(records[2]["route"] as? String, "/webhooks/wechat/{account}")
            XCTAssertEqual(records[2]["method"] as? String, "POST")
            XCTAssertEqual(records[2]["status"] as? Int, 200)
            XCTAssertNil(records[2]["actor"])
            XCTAssertNotNil(records[2]["durationMs"] as? Double)
            XCTAssertEqual(records[3]["status"] as? Int, 404)
            let all = lines.withLockedValue { $0 }.joined(separator: "\n")
            for secret in [Harness.adminToken, key.key, "oSECRETOPENID", "my secret words", "nonce-log-1", "8613800000000"] {
                XCTAssertFalse(all.contains(secret), "the access log holds \(secret)")
            }
        }
    }
}
