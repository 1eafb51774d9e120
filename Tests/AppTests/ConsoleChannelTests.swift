import App
import Foundation
import GatewayCore
import Hummingbird
import HummingbirdTesting
import XCTest

/// The console's WeChat page: QR codes created and reported, reply rules and the menu edited as the
/// API's JSON, through the same API calls (and permissions) as everything else.
final class ConsoleChannelTests: XCTestCase {
    func test_qrCodesRepliesAndMenu_fromTheConsole() async throws {
        let h = try Harness()
        try await h.test { client in
            let mara = try await ConsoleActionTests.signIn(client, "mara", role: "marketer")
            func page(_ cookie: String) async throws -> String {
                try await client.execute(uri: "/console/channels?account=demo", method: .get, headers: [.cookie: cookie]).text
            }
            let empty = try await page(mara.cookie)
            XCTAssertTrue(empty.contains("data-qr-create"), "a marketer can create codes")
            XCTAssertTrue(empty.contains("data-replies-config"), "the config file's replies at first")

            let create = "csrf=\(mara.csrf)&_method=POST&_path=%2Fapi%2Fv1%2Faccounts%2Fdemo%2Fqrcodes&_back=%2Fconsole%2Fchannels&_next=%2Fconsole%2Fchannels"
                + "&_gates=permanent%2CexpiresInSeconds&permanent%3Abool=true&_on=expiresInSeconds&expiresInSeconds%3Aint=604800"
                + "&scene=booth-c&tags%3Alist=source%3Aexpo-2026%2C+booth%3Ac&owner=mara"
            let created = try await ConsoleActionTests.act(client, mara.cookie, create, json: true)
            XCTAssertEqual(created.status, .ok, created.text)
            let code = try await client.get("/api/v1/accounts/demo/qrcodes/booth-c")
            XCTAssertEqual(code.json["permanent"] as? Bool, false, "the temporary choice sent expiresInSeconds only")
            XCTAssertEqual(code.json["tags"] as? [String], ["source:expo-2026", "booth:c"])

            let subscribe = try h.builder("demo").post(
                xml: SampleCallbacks.event(to: "gh", from: "oC1", event: "subscribe", eventKey: "qrscene_booth-c", createTime: h.nowSeconds),
                timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false)
            _ = try await client.callback(subscribe)
            let withCode = try await page(mara.cookie)
            XCTAssertTrue(withCode.contains(#"data-scene="booth-c""#))
            XCTAssertTrue(withCode.contains(#"src="/api/v1/accounts/demo/qrcodes/booth-c.png""#), "the code's image")

            let rules = #"{"welcome":{"type":"text","text":"欢迎来到展位 C"}}"#
            let save = "csrf=\(mara.csrf)&_method=PUT&_path=%2Fapi%2Fv1%2Faccounts%2Fdemo%2Freplies&_raw=rules&_type=application%2Fjson&_back=%2Fconsole%2Fchannels&rules="
                + (rules.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
            let saved = try await ConsoleActionTests.act(client, mara.cookie, save, json: true)
            XCTAssertEqual(saved.status, .ok, saved.text)
            let after = try await page(mara.cookie)
            XCTAssertFalse(after.contains("data-replies-config"))
            XCTAssertTrue(after.contains("欢迎来到展位 C"))
            let badMenu = "csrf=\(mara.csrf)&_method=PUT&_path=%2Fapi%2Fv1%2Faccounts%2Fdemo%2Fmenu&_raw=menu&_type=application%2Fjson&_back=%2Fconsole%2Fchannels&menu="
                + (#"{"button":[]}"#.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
            let refused = try await ConsoleActionTests.act(client, mara.cookie, badMenu, json: true)
            XCTAssertEqual(refused.value?.lookup("error.code")?.scalarText, "invalid_menu", "the API's check, shown beside the form")

            // A mass send from the page's form: refused until the tag is on WeChat, the API's reason shown.
            let mass = "csrf=\(mara.csrf)&_method=POST&_path=%2Fapi%2Fv1%2Faccounts%2Fdemo%2Fmass-sends&_back=%2Fconsole%2Fchannels&content.type=text&tag=vip&content.text=Expo"
            let notPushed = try await ConsoleActionTests.act(client, mara.cookie, mass, json: true)
            XCTAssertEqual(notPushed.value?.lookup("error.code")?.scalarText, "tag_not_pushed")
            try await h.redis.send("SET", Keys.wechatTagId(account: "demo", tag: "vip"), "101")
            let sent = try await ConsoleActionTests.act(client, mara.cookie, mass, json: true)
            XCTAssertEqual(sent.status, .ok, sent.text)
            let withMass = try await page(mara.cookie)
            XCTAssertTrue(withMass.contains("data-mass-quota>1 / 4<"), "the quota used this month")
            XCTAssertTrue(withMass.contains("submitted"))

            let otto = try await ConsoleActionTests.signIn(client, "otto", role: "analyst")
            let readOnly = try await page(otto.cookie)
            XCTAssertTrue(readOnly.contains(#"data-scene="booth-c""#), "an analyst sees the report")
            XCTAssertFalse(readOnly.contains("data-qr-create"), "but creates nothing")
        }
    }
}
