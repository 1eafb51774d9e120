import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import XCTest
import GatewayCore
@testable import AdminAPI

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
            XCTAssertTrue(dashboard.text.contains("<h1>概览</h1>") && dashboard.text.contains(#"mara <span class="role">marketer</span>"#), dashboard.text)
            let css = try await client.execute(uri: "/console/assets/console.css", method: .get)
            XCTAssertEqual(css.headers[.contentType], "text/css; charset=utf-8")
            let missing = try await client.execute(uri: "/console/assets/nope.js", method: .get)
            XCTAssertEqual(missing.status, .notFound)
        }
    }
}

/// `/console/act`: a form becomes the API call it names, as the operator, with the operator's
/// permissions and CSRF token; what the API refuses comes back as a notice, nothing changes.
final class ConsoleActionTests: XCTestCase {
    /// Creates an operator and signs in through the console's form; the session cookie and its CSRF token.
    static func signIn(_ client: some TestClientProtocol, _ name: String, role: String) async throws -> (cookie: String, csrf: String) {
        _ = try await client.send(.post, "/api/v1/operators", json: #"{"name":"\#(name)","role":"\#(role)","password":"a-long-password-123"}"#)
        let form = try await client.execute(uri: "/console/login", method: .get)
        let loginCookie = try XCTUnwrap(form.headers[.setCookie]?.split(separator: ";").first.map(String.init))
        let token = String(loginCookie.split(separator: "=", maxSplits: 1)[1])
        let signedIn = try await client.execute(
            uri: "/console/login", method: .post, headers: [.contentType: "application/x-www-form-urlencoded", .cookie: loginCookie],
            body: ByteBuffer(string: "csrf=\(token)&name=\(name)&password=a-long-password-123"))
        let cookie = try XCTUnwrap(signedIn.headers[values: .setCookie].first { $0.hasPrefix("scrm_session=") }?.split(separator: ";").first.map(String.init))
        let page = try await client.execute(uri: "/console/customers", method: .get, headers: [.cookie: cookie])
        let csrf = try XCTUnwrap(page.text.firstMatch(of: #/<meta name="csrf" content="([^"]+)">/#)?.1).description
        return (cookie, csrf)
    }

    static func act(_ client: some TestClientProtocol, _ cookie: String, _ form: String, json: Bool = false) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: "application/x-www-form-urlencoded", .cookie: cookie]
        if json { headers[.accept] = "application/json" }
        return try await client.execute(uri: "/console/act", method: .post, headers: headers, body: ByteBuffer(string: form))
    }

    func test_aFormIsTheAPICall_withTheOperatorsPermissionsAndToken() async throws {
        let h = try Harness()
        try await h.test { client in
            let created = try await client.send(
                .post, "/api/v1/events", json: #"{"events":[{"id":"act-1","type":"web.visit","identities":[{"type":"email","value":"act@example.com","verified":true}]}]}"#)
            let id = try XCTUnwrap(created.value?.lookup("results.0.customer")?.scalarText)
            let mara = try await Self.signIn(client, "mara", role: "marketer")
            let tagForm = "_method=POST&_path=%2Fapi%2Fv1%2Ftags%2F%7B_tag%7D%2Fcustomers&_tag=expo%20visitor%E8%B4%B5%E5%AE%BE&_back=%2Fconsole%2Fcustomers%2F\(id)&customerIds%5B%5D=\(id)"

            let forged = try await Self.act(client, mara.cookie, "csrf=not-the-token&" + tagForm)
            XCTAssertEqual(forged.status, .seeOther)
            XCTAssertEqual(forged.headers[.location], "/console/customers/\(id)")
            let stillUntagged = try await client.get("/api/v1/customers/\(id)")
            XCTAssertEqual(stillUntagged.value?.lookup("tags"), .array([]), "a form without the session's token changes nothing")

            let bad = try await Self.act(client, mara.cookie, "csrf=\(mara.csrf)&" + tagForm, json: true)
            XCTAssertEqual(bad.status, .badRequest, "a space is not allowed in a tag: the API's refusal, with its code")
            XCTAssertEqual(bad.value?.lookup("error.code")?.scalarText, "invalid_tag")

            let good = try await Self.act(client, mara.cookie, "csrf=\(mara.csrf)&" + tagForm.replacingOccurrences(of: "expo%20visitor", with: "expo-visitor"))
            XCTAssertEqual(good.status, .seeOther)
            XCTAssertTrue(good.headers[values: .setCookie].contains { $0.hasPrefix("scrm_flash=") }, "the next page shows a notice")
            let tagged = try await client.get("/api/v1/customers/\(id)")
            XCTAssertEqual(tagged.value?.lookup("tags"), .array([.string("expo-visitor贵宾")]))
            let audit = try await client.get("/api/v1/audit?order=newest&limit=1")
            XCTAssertEqual(audit.value?.lookup("entries.0.actor")?.scalarText, "operator:mara", "the API audits the console's call as the operator, newest first")
            XCTAssertEqual(audit.value?.lookup("entries.0.route")?.scalarText, "/api/v1/tags/{name}/customers")
            let oldest = try await client.get("/api/v1/audit?limit=1")
            XCTAssertEqual(oldest.value?.lookup("entries.0.actor")?.scalarText, "bootstrap", "oldest first by default")
            let badOrder = try await client.get("/api/v1/audit?order=sideways")
            XCTAssertEqual(badOrder.status, .badRequest)

            let profile = try await Self.act(
                client, mara.cookie,
                "csrf=\(mara.csrf)&_method=PATCH&_path=%2Fapi%2Fv1%2Fcustomers%2F\(id)&_back=%2F%2Fevil.example&profile.spend%3Anum=1200&profile.city=Shanghai&consent.sms=granted")
            XCTAssertEqual(profile.headers[.location], "/console", "a return address off the console is replaced")
            let patched = try await client.get("/api/v1/customers/\(id)")
            XCTAssertEqual(patched.value?.lookup("profile.spend"), .int(1200), "typed fields arrive typed")
            XCTAssertEqual(patched.value?.lookup("consent.sms.state")?.scalarText, "granted")

            let otto = try await Self.signIn(client, "otto", role: "analyst")
            let refused = try await Self.act(client, otto.cookie, "csrf=\(otto.csrf)&" + tagForm.replacingOccurrences(of: "expo%20visitor", with: "analyst-tag"), json: true)
            XCTAssertEqual(refused.status, .forbidden, "the analyst's role decides, not the form")
            let offAPI = try await Self.act(client, mara.cookie, "csrf=\(mara.csrf)&_method=POST&_path=%2Fconsole%2Flogout", json: true)
            XCTAssertEqual(offAPI.value?.lookup("error.code")?.scalarText, "bad_form", "a form names only /api/v1 calls")
        }
    }

    func test_formFields_becomeTypedJSON() throws {
        let body = try ConsoleFormBody.json([
            ("csrf", "x"), ("_back", "/console"), ("name", "Expo"), ("weight:int", "3"), ("rate:num", "1.5"), ("on:bool", "on"),
            ("tags:list", "a, b\nc"), ("content.sms.text", "Hi"), ("variants[0].name", "A"), ("variants[1].name", "B"), ("variants[0].weight:int", "50"),
            ("extra:json", #"{"k":[1]}"#), ("blank", "  "), ("channel.wechat:oa1", "granted"),
        ])
        XCTAssertEqual(
            body.text,
            #"{"channel":{"wechat:oa1":"granted"},"content":{"sms":{"text":"Hi"}},"extra":{"k":[1]},"name":"Expo","on":true,"rate":1.5,"tags":["a","b","c"],"variants":[{"name":"A","weight":50},{"name":"B"}],"weight":3}"#)
        XCTAssertThrowsError(try ConsoleFormBody.json([("weight:int", "three")]))
    }
}

extension TestResponse {
    var value: JSONValue? { JSONValue.parse(body.readableBytesView) }
}

final class ConsoleTemplateTests: XCTestCase {
    /// Every template parses and renders, and every word a template shows (`t.key`) is in strings.json
    /// in all three languages.
    func test_everyTemplateRenders_andEveryWordIsTranslated() throws {
        guard case .object(let entries)? = JSONValue.parse(PackageResources.strings_json) else { return XCTFail("strings.json is not JSON") }
        for (key, value) in entries {
            for lang in ConsoleStrings.languages {
                XCTAssertFalse(value.lookup(lang)?.scalarText?.isEmpty ?? true, "\(key) has no \(lang)")
            }
        }
        for (name, bytes) in ConsolePages.templates {
            let text = String(decoding: bytes, as: UTF8.self)
            for match in text.matches(of: #/\{\{[#^/]?t\.([A-Za-z_]+)/#) {
                XCTAssertNotNil(entries[String(match.1)], "\(name) shows t.\(match.1), which strings.json lacks")
            }
            XCTAssertFalse(ConsolePages.library.render(["t": ConsoleStrings.table["ja"]!], withTemplate: name)?.isEmpty ?? true, name)
        }
    }
}

final class ConsoleCampaignFormTests: XCTestCase {
    /// The campaign form's Preview re-renders what was typed; a ticked checkbox stays ticked although
    /// its hidden `false` comes first in the form.
    func test_preview_keepsTheTypedForm_andItsTickedBoxes() async throws {
        let h = try Harness()
        try await h.test { client in
            let mara = try await ConsoleActionTests.signIn(client, "mara", role: "marketer")
            let form = "csrf=\(mara.csrf)&name=Expo&audience=vip&_gates=channels%5B0%5D&_on=channels%5B0%5D&channels%5B0%5D.channel=sms"
                + "&channels%5B0%5D.text=Hi&trackLinks%3Abool=false&trackLinks%3Abool=true"
            let page = try await client.execute(
                uri: "/console/campaigns/new", method: .post, headers: [.contentType: "application/x-www-form-urlencoded", .cookie: mara.cookie],
                body: ByteBuffer(string: form))
            XCTAssertEqual(page.status, .ok)
            XCTAssertTrue(page.text.contains(#"id="c-name" name="name" value="Expo""#), page.text)
            XCTAssertTrue(page.text.contains(#"name="trackLinks:bool" value="true" checked"#), "the ticked box stays ticked")
        }
    }
}

/// Without JavaScript, an import is a pasted CSV sent as it is (`_raw`, `_type=text/csv`) to the
/// import API; the operator lands on the job's page.
final class ConsoleImportTests: XCTestCase {
    func test_pastedCSV_becomesAnImportJob() async throws {
        let h = try Harness()
        try await h.test { client in
            let mara = try await ConsoleActionTests.signIn(client, "mara", role: "marketer")
            let page = try await client.execute(uri: "/console/imports", method: .get, headers: [.cookie: mara.cookie])
            XCTAssertTrue(page.text.contains(#"<input type="hidden" name="_raw" value="csv">"#), "the page offers the paste form")
            let csv = "phone,tags\n+8613800000001,expo\n+8613800000002,expo\nnot-a-phone,expo\n"
            let form =
                "csrf=\(mara.csrf)&_method=POST&_path=%2Fapi%2Fv1%2Fcustomers%2Fimport%3Fsource%3Dconsole&_raw=csv&_type=text%2Fcsv"
                + "&_back=%2Fconsole%2Fimports&_next=%2Fconsole%2Fimports%2F%7Bid%7D&_ok=importAccepted&csv="
                + (csv.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
            let r = try await ConsoleActionTests.act(client, mara.cookie, form)
            XCTAssertEqual(r.status, .seeOther)
            let location = try XCTUnwrap(r.headers[.location])
            let id = try XCTUnwrap(location.firstMatch(of: #/^/console/imports/([0-9A-Z]{26})$/#)?.1, location)
            let job = try await client.get("/api/v1/imports/\(id)")
            XCTAssertEqual(job.status, .ok)
            XCTAssertEqual(job.json["source"] as? String, "console")
            let shown = try await client.execute(uri: location, method: .get, headers: [.cookie: mara.cookie])
            XCTAssertEqual(shown.status, .ok)
        }
    }
}
