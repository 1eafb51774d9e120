import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import XCTest

/// The web console's sign-in (issue 17, work in progress): pages without a session go to the
/// sign-in page, the form carries a CSRF token, the language follows Accept-Language, and every
/// page has a strict Content-Security-Policy.
final class ConsoleTests: XCTestCase {
    func test_signIn_withCSRF_thenTheDashboard_inTheReadersLanguage() async throws {
        let h = try Harness()
        try await h.test { client in
            _ = try await client.send(.post, "/api/v1/operators", json: #"{"name":"mara","role":"marketer","password":"a-long-password-123"}"#)
            let anonymous = try await client.execute(uri: "/console", method: .get)
            XCTAssertEqual(anonymous.status, .seeOther)
            XCTAssertEqual(anonymous.headers[.location], "/console/login")

            let form = try await client.execute(uri: "/console/login", method: .get, headers: [.acceptLanguage: "ja,en;q=0.5"])
            XCTAssertEqual(form.status, .ok)
            XCTAssertTrue(form.text.contains("<h1>ログイン</h1>"), form.text)
            let csp = try XCTUnwrap(form.headers[HTTPField.Name("Content-Security-Policy")!])
            XCTAssertTrue(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), csp)
            let cookie = try XCTUnwrap(form.headers[.setCookie]?.split(separator: ";").first.map(String.init))
            let csrf = String(cookie.split(separator: "=", maxSplits: 1)[1])
            XCTAssertTrue(form.text.contains(#"name="csrf" value="\#(csrf)""#))

            func post(_ body: String, cookies: String) async throws -> TestResponse {
                try await client.execute(
                    uri: "/console/login", method: .post, headers: [.contentType: "application/x-www-form-urlencoded", .cookie: cookies], body: ByteBuffer(string: body))
            }
            let forged = try await post("csrf=not-it&name=mara&password=a-long-password-123", cookies: cookie)
            XCTAssertEqual(forged.status, .forbidden, "a form without its token signs nobody in")
            XCTAssertNil(forged.headers[values: .setCookie].first { $0.hasPrefix("scrm_session=") })
            let wrong = try await post("csrf=\(csrf)&name=mara&password=not-the-password", cookies: cookie)
            XCTAssertEqual(wrong.status, .unauthorized)
            XCTAssertTrue(wrong.text.contains("The name or the password is wrong."), wrong.text)
            let signedIn = try await post("csrf=\(csrf)&name=mara&password=a-long-password-123", cookies: cookie)
            XCTAssertEqual(signedIn.status, .seeOther)
            XCTAssertEqual(signedIn.headers[.location], "/console")
            let session = try XCTUnwrap(signedIn.headers[values: .setCookie].first { $0.hasPrefix("scrm_session=") }?.split(separator: ";").first.map(String.init))

            let dashboard = try await client.execute(uri: "/console", method: .get, headers: [.cookie: session, .acceptLanguage: "zh-CN,zh;q=0.9"])
            XCTAssertEqual(dashboard.status, .ok)
            XCTAssertTrue(dashboard.text.contains("<h1>概览</h1>") && dashboard.text.contains("mara (marketer)"), dashboard.text)
            let css = try await client.execute(uri: "/console/assets/console.css", method: .get)
            XCTAssertEqual(css.headers[.contentType], "text/css; charset=utf-8")
            let missing = try await client.execute(uri: "/console/assets/nope.js", method: .get)
            XCTAssertEqual(missing.status, .notFound)
        }
    }
}
