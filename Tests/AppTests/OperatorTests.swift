import App
import Foundation
import GatewayCore
import GatewayCrypto
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import XCTest

/// Console operators: scrypt-hashed passwords, session cookies with CSRF, lockout and per-address limits.
final class OperatorTests: XCTestCase {
    static let csrf = HTTPField.Name("X-CSRF-Token")!

    /// Signs in; answers the cookie value and the CSRF token (or the failed response).
    static func signIn(_ client: some TestClientProtocol, _ name: String, _ password: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        var h = headers
        h[.contentType] = "application/json"
        return try await client.execute(uri: "/api/v1/session", method: .post, headers: h, body: ByteBuffer(string: #"{"name":"\#(name)","password":"\#(password)"}"#))
    }

    static func cookie(_ r: TestResponse) throws -> String {
        let header = try XCTUnwrap(r.headers[.setCookie])
        return String(header.split(separator: ";")[0])
    }

    static func call(
        _ client: some TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, cookie: String, csrf: String? = nil, json: String = "{}"
    ) async throws -> TestResponse {
        var headers: HTTPFields = [.cookie: cookie, .contentType: "application/json"]
        if let csrf { headers[Self.csrf] = csrf }
        return try await client.execute(uri: uri, method: method, headers: headers, body: method == .get ? nil : ByteBuffer(string: json))
    }

    func test_operator_createdHashed_signsIn_callsWithCSRF_andSignsOut() async throws {
        let h = try Harness()
        try await h.test { client in
            let weak = try await client.send(.post, "/api/v1/operators", json: #"{"name":"mei","password":"short","role":"marketer"}"#)
            XCTAssertEqual(weak.errorCode, "weak_password")
            let made = try await client.send(.post, "/api/v1/operators", json: #"{"name":"mei","password":"correct horse battery","role":"marketer"}"#)
            XCTAssertEqual(made.status, .created, made.text)
            XCTAssertEqual(made.json["role"] as? String, "marketer")
            let again = try await client.send(.post, "/api/v1/operators", json: #"{"name":"mei","password":"another long one","role":"admin"}"#)
            XCTAssertEqual(again.status, .conflict)
            let stored = try await h.redis.send("HGET", "operator:{mei}", "password").string ?? ""
            XCTAssertTrue(stored.hasPrefix("scrypt$15$8$1$"), stored)
            XCTAssertFalse(stored.contains("horse"))
            let list = try await client.get("/api/v1/operators")
            XCTAssertFalse(list.text.contains("scrypt"), "the hash is never served")
            XCTAssertEqual((list.json["operators"] as? [[String: Any]])?.map { $0["name"] as? String }, ["mei"])

            let wrong = try await Self.signIn(client, "mei", "wrong horse battery")
            XCTAssertEqual(wrong.status, .unauthorized)
            XCTAssertEqual(wrong.errorCode, "invalid_credentials")
            let nobody = try await Self.signIn(client, "nobody", "correct horse battery")
            XCTAssertEqual(nobody.errorCode, "invalid_credentials", "an unknown name answers as a wrong password")

            let signedIn = try await Self.signIn(client, "mei", "correct horse battery")
            XCTAssertEqual(signedIn.status, .ok, signedIn.text)
            let setCookie = try XCTUnwrap(signedIn.headers[.setCookie])
            for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] { XCTAssertTrue(setCookie.contains(attribute), setCookie) }
            XCTAssertFalse(setCookie.contains("Secure"), "plain http: a Secure cookie would never come back")
            let cookie = try Self.cookie(signedIn)
            let csrf = try XCTUnwrap(signedIn.json["csrfToken"] as? String)
            XCTAssertEqual(signedIn.json["role"] as? String, "marketer")
            let sessions = try await h.keys("opsession:*")
            XCTAssertEqual(sessions.count, 1)
            XCTAssertFalse(sessions.contains { $0.contains(String(cookie.dropFirst("scrm_session=".count))) }, "the session is stored under the token's hash")

            // Reads need the cookie only; changes need the CSRF token too; the role still applies.
            let tags = try await Self.call(client, .get, "/api/v1/tags", cookie: cookie)
            XCTAssertEqual(tags.status, .ok)
            let forged = try await Self.call(client, .post, "/api/v1/tags", cookie: cookie, json: #"{"name":"vip"}"#)
            XCTAssertEqual(forged.status, .forbidden)
            XCTAssertEqual(forged.errorCode, "csrf_failed")
            let wrongToken = try await Self.call(client, .post, "/api/v1/tags", cookie: cookie, csrf: String(repeating: "0", count: 48), json: #"{"name":"vip"}"#)
            XCTAssertEqual(wrongToken.errorCode, "csrf_failed")
            let made2 = try await Self.call(client, .post, "/api/v1/tags", cookie: cookie, csrf: csrf, json: #"{"name":"vip"}"#)
            XCTAssertEqual(made2.status, .created, made2.text)
            let keys = try await Self.call(client, .get, "/api/v1/keys", cookie: cookie)
            XCTAssertEqual(keys.status, .forbidden)
            let session = try await Self.call(client, .get, "/api/v1/session", cookie: cookie)
            XCTAssertEqual(session.json["csrfToken"] as? String, csrf)
            let audit = try await client.get("/api/v1/audit?actor=operator:mei")
            let routes = (audit.json["entries"] as? [[String: Any]])?.map { "\($0["route"] ?? "") \($0["outcome"] ?? "")" }
            XCTAssertEqual(routes, ["/api/v1/session failed", "/api/v1/session ok", "/api/v1/tags ok", "/api/v1/keys denied"])

            // Signing out ends the session.
            let out = try await Self.call(client, .delete, "/api/v1/session", cookie: cookie, csrf: csrf)
            XCTAssertEqual(out.status, .noContent)
            XCTAssertTrue(out.headers[.setCookie]?.contains("Max-Age=0") == true)
            let after = try await Self.call(client, .get, "/api/v1/tags", cookie: cookie)
            XCTAssertEqual(after.errorCode, "session_expired")

            // Behind an https proxy the cookie is Secure; a disabled operator's session is refused at once.
            let secure = try await Self.signIn(client, "mei", "correct horse battery", headers: [HTTPField.Name("X-Forwarded-Proto")!: "https"])
            XCTAssertTrue(secure.headers[.setCookie]?.contains("; Secure") == true)
            let disabled = try await client.execute(uri: "/api/v1/operators/mei", method: .delete, headers: [.authorization: "Bearer \(Harness.adminToken)"])
            XCTAssertNotNil(disabled.json["disabledAt"] as? String)
            let refused = try await Self.call(client, .get, "/api/v1/tags", cookie: try Self.cookie(secure))
            XCTAssertEqual(refused.errorCode, "session_expired")
            let noMore = try await Self.signIn(client, "mei", "correct horse battery")
            XCTAssertEqual(noMore.errorCode, "invalid_credentials")
        }
    }

    func test_repeatedFailures_lockTheName_andAddressesAreRateLimited() async throws {
        let h = try Harness { $0.admin.loginAttemptsPerMinute = 9 }
        try await h.test { client in
            _ = try await client.send(.post, "/api/v1/operators", json: #"{"name":"li","password":"a long enough secret","role":"analyst"}"#)
            for _ in 0..<4 {
                let r = try await Self.signIn(client, "li", "not the secret at all")
                XCTAssertEqual(r.errorCode, "invalid_credentials")
            }
            let fifth = try await Self.signIn(client, "li", "not the secret at all")
            XCTAssertEqual(fifth.status, .tooManyRequests)
            XCTAssertEqual(fifth.errorCode, "locked")
            let right = try await Self.signIn(client, "li", "a long enough secret")
            XCTAssertEqual(right.errorCode, "locked", "the right password does not open a locked name")
            let wait = Int(right.headers[.retryAfter] ?? "") ?? 0
            XCTAssertTrue((800...900).contains(wait), "Retry-After \(wait)")
            let ttl = try await h.redis.send("PTTL", "login:fail:{li}").int ?? 0
            XCTAssertGreaterThan(ttl, 800_000, "the lock expires by itself")
            // Attempts 7 to 9 from this address still answer; the tenth within the minute is refused.
            for _ in 0..<3 { _ = try await Self.signIn(client, "other", "whatever it is") }
            let limited = try await Self.signIn(client, "other", "whatever it is")
            XCTAssertEqual(limited.errorCode, "rate_limited")
            XCTAssertNotNil(limited.headers[.retryAfter])
        }
    }
}
