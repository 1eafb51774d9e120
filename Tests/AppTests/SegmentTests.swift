import Foundation
import GatewayCore
import Hummingbird
import HummingbirdTesting
import XCTest

@testable import App

/// Saved segments: `PUT /api/v1/segments/{name}` creates or replaces, the expression checked as a
/// campaign audience is; bad input stores nothing; every change is audited; the console's audience
/// page saves, lists, opens and deletes them through the same API.
final class SegmentTests: XCTestCase {
    func test_saveReplaceListDelete_andBadInputStoresNothing() async throws {
        let h = try Harness()
        try await h.test { client in
            let created = try await client.send(.put, "/api/v1/segments/expo-vips", json: #"{"expression":"vip & expo-2026 & !churned","description":"  Booth guests  "}"#)
            XCTAssertEqual(created.status, .created, created.text)
            XCTAssertEqual(created.json["expression"] as? String, "vip & expo-2026 & !churned")
            XCTAssertEqual(created.json["description"] as? String, "Booth guests")
            XCTAssertEqual(created.json["updatedBy"] as? String, "bootstrap")
            let replaced = try await client.send(.put, "/api/v1/segments/expo-vips", json: #"{"expression":"vip & expo-2026"}"#)
            XCTAssertEqual(replaced.status, .ok)
            XCTAssertNil(replaced.json["description"], "a replace is the whole segment")
            _ = try await client.send(.put, "/api/v1/segments/all.sms", json: #"{"expression":"consent:sms"}"#)

            let list = try await client.get("/api/v1/segments")
            let segments = try XCTUnwrap(list.json["segments"] as? [[String: Any]])
            XCTAssertEqual(segments.map { $0["name"] as? String }, ["all.sms", "expo-vips"])
            XCTAssertEqual(segments.last?["expression"] as? String, "vip & expo-2026")
            let one = try await client.get("/api/v1/segments/all.sms")
            XCTAssertEqual(one.json["expression"] as? String, "consent:sms")

            for (name, body, code) in [
                ("Bad Name", #"{"expression":"vip"}"#, "invalid_name"), ("-x", #"{"expression":"vip"}"#, "invalid_name"),
                (String(repeating: "a", count: 65), #"{"expression":"vip"}"#, "invalid_name"), ("ok", #"{"expression":"vip &"}"#, "invalid_expression"),
                ("ok", #"{"expression":"profile.nosuch>=3"}"#, nil), ("ok", #"{"description":"no expression"}"#, nil),
                ("ok", #"{"expression":"vip","description":"\#(String(repeating: "d", count: 501))"}"#, "invalid_body"),
            ] {
                let r = try await client.send(.put, "/api/v1/segments/\(name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? name)", json: body)
                XCTAssertEqual(r.status, .badRequest, "\(name) \(body): \(r.text)")
                if let code { XCTAssertEqual(r.errorCode, code, body) }
            }
            let names = try await h.redis.send("HKEYS", Keys.segments).strings.sorted()
            XCTAssertEqual(names, ["all.sms", "expo-vips"], "refused segments are not stored")

            let audit = try await client.get("/api/v1/audit?order=newest")
            let entries = try XCTUnwrap(audit.json["entries"] as? [[String: Any]])
            XCTAssertTrue(
                entries.contains { $0["method"] as? String == "PUT" && ($0["route"] as? String ?? "").contains("segments") && $0["targets"] as? [String] == ["expo-vips"] },
                audit.text)

            let deleted = try await client.send(.delete, "/api/v1/segments/expo-vips", json: "")
            XCTAssertEqual(deleted.status, .noContent)
            let again = try await client.send(.delete, "/api/v1/segments/expo-vips", json: "")
            XCTAssertEqual(again.status, .notFound)
            let gone = try await client.get("/api/v1/segments/expo-vips")
            XCTAssertEqual(gone.status, .notFound)
        }
    }

    func test_console_savesOpensAndDeletesASegment() async throws {
        let h = try Harness()
        try await h.test { client in
            let mara = try await ConsoleActionTests.signIn(client, "mara", role: "marketer")
            let empty = try await client.execute(uri: "/console/audiences", method: .get, headers: [.cookie: mara.cookie])
            XCTAssertTrue(empty.text.contains("No saved segments yet"), "the empty list says how to start")
            let counted = try await client.execute(uri: "/console/audiences?expr=vip%20%26%20!churned", method: .get, headers: [.cookie: mara.cookie])
            XCTAssertTrue(counted.text.contains("data-save-segment"), "a counted expression can be saved")
            // The Count button is a GET form: the browser writes spaces as `+` (and a typed `+` as %2B).
            let typed = try await client.execute(uri: "/console/audiences?expr=vip+%26+%21churned", method: .get, headers: [.cookie: mara.cookie])
            XCTAssertTrue(typed.text.contains(">vip &amp; !churned</textarea>"), "the form's + is a space")
            XCTAssertTrue(typed.text.contains("data-save-segment"), "and the expression counts")
            let save =
                "csrf=\(mara.csrf)&_method=PUT&_path=%2Fapi%2Fv1%2Fsegments%2F%7B_name%7D&_back=%2Fconsole%2Faudiences&_next=%2Fconsole%2Faudiences%3Fsegment%3D%7Bname%7D"
                + "&_ok=segmentSaved&expression=vip%20%26%20!churned&_name=loyal&description=Not%20churned"
            let saved = try await ConsoleActionTests.act(client, mara.cookie, save)
            XCTAssertEqual(saved.status, .seeOther)
            XCTAssertEqual(saved.headers[.location], "/console/audiences?segment=loyal")
            let stored = try await client.get("/api/v1/segments/loyal")
            XCTAssertEqual(stored.json["updatedBy"] as? String, "operator:mara")

            let opened = try await client.execute(uri: "/console/audiences?segment=loyal", method: .get, headers: [.cookie: mara.cookie])
            XCTAssertTrue(opened.text.contains(">vip &amp; !churned</textarea>"), "the segment's expression is in the editor")
            XCTAssertTrue(opened.text.contains(#"data-segment="loyal""#))
            XCTAssertTrue(opened.text.contains("/console/campaigns/new?audience=vip%20%26%20%21churned"), "a campaign can start from it")
            let campaign = try await client.execute(uri: "/console/campaigns/new?audience=vip%20%26%20%21churned", method: .get, headers: [.cookie: mara.cookie])
            XCTAssertTrue(campaign.text.contains(">vip &amp; !churned</textarea>"), "the campaign form starts on the segment")

            let ana = try await ConsoleActionTests.signIn(client, "ana", role: "analyst")
            let readOnly = try await client.execute(uri: "/console/audiences?segment=loyal", method: .get, headers: [.cookie: ana.cookie])
            XCTAssertTrue(readOnly.text.contains(#"data-segment="loyal""#), "an analyst sees segments")
            XCTAssertFalse(readOnly.text.contains("data-save-segment"), "but cannot save")
            XCTAssertFalse(readOnly.text.contains("segments/loyal\"><input type=\"hidden\" name=\"_back\""), "nor delete")
            let refused = try await ConsoleActionTests.act(
                client, ana.cookie, "csrf=\(ana.csrf)&_method=DELETE&_path=%2Fapi%2Fv1%2Fsegments%2Floyal&_back=%2Fconsole%2Faudiences", json: true)
            XCTAssertEqual(refused.status, .forbidden)

            let deleted = try await ConsoleActionTests.act(
                client, mara.cookie, "csrf=\(mara.csrf)&_method=DELETE&_path=%2Fapi%2Fv1%2Fsegments%2Floyal&_back=%2Fconsole%2Faudiences&_ok=segmentDeleted")
            XCTAssertEqual(deleted.status, .seeOther)
            let after = try await client.get("/api/v1/segments")
            XCTAssertEqual((after.json["segments"] as? [Any])?.count, 0)
        }
    }
}
