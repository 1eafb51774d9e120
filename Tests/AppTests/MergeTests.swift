import Foundation
import GatewayCore
import Hummingbird
import HummingbirdTesting
import XCTest

/// Two customers joined by a unionid (or phone) become one: the older id survives with the union of
/// identities, tags, timeline and consent; the other id redirects to it.
final class MergeTests: XCTestCase, @unchecked Sendable {
    func subscribe(_ client: some TestClientProtocol, _ h: Harness, account: String, openid: String, unionId: String?, scene: String? = nil) async throws {
        let extra = unionId.map { "<UnionId><![CDATA[\($0)]]></UnionId>" } ?? ""
        let xml = SampleCallbacks.event(to: "gh", from: openid, event: "subscribe", eventKey: scene.map { "qrscene_\($0)" }, createTime: h.nowSeconds, extra: extra)
        let r = try await client.callback(try h.builder(account).post(xml: xml, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false))
        XCTAssertEqual(r.status, .ok)
    }

    func id(_ client: some TestClientProtocol, account: String, openid: String) async throws -> String {
        let found = try await client.get("/api/v1/customers/lookup?account=\(account)&openid=\(openid)")
        return try XCTUnwrap(found.json["id"] as? String)
    }

    /// Order 1: the older customer already holds the unionid; a newer follower arrives with it.
    func test_newerFollowerWithKnownUnionId_mergesIntoOlderCustomer() async throws {
        let h = try Harness()
        try await h.test { client in
            try await self.subscribe(client, h, account: "demo", openid: "oOLD", unionId: "UNION1", scene: "expo2026")
            let older = try await self.id(client, account: "demo", openid: "oOLD")
            h.now += 1000
            // On another account the same person has another openid, but the same unionid.
            try await self.subscribe(client, h, account: "plain", openid: "oNEW", unionId: nil)
            let newer = try await self.id(client, account: "plain", openid: "oNEW")
            XCTAssertNotEqual(older, newer)
            h.now += 1000
            let msg = SampleCallbacks.text(to: "gh", from: "oNEW", content: "hi", msgId: "m1", createTime: h.nowSeconds)
                .replacingOccurrences(of: "</xml>", with: "<UnionId>UNION1</UnionId></xml>")
            let r = try await client.callback(try h.builder("plain").post(xml: msg, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false))
            XCTAssertEqual(r.status, .ok)
            try await self.assertMerged(client, h, survivor: older, merged: newer)
        }
    }

    /// Order 2: the newer customer holds the unionid; the older one binds it later through the API.
    func test_olderCustomerBindingNewersUnionId_keepsOlderId() async throws {
        let h = try Harness()
        try await h.test { client in
            try await self.subscribe(client, h, account: "demo", openid: "oOLD", unionId: nil, scene: "expo2026")
            let older = try await self.id(client, account: "demo", openid: "oOLD")
            h.now += 1000
            try await self.subscribe(client, h, account: "plain", openid: "oNEW", unionId: "UNION1")
            let newer = try await self.id(client, account: "plain", openid: "oNEW")
            h.now += 1000
            let bound = try await client.send(.post, "/api/v1/customers/\(older)/identities", json: #"{"type":"unionid","value":"UNION1"}"#)
            XCTAssertEqual(bound.status, .ok)
            XCTAssertEqual(bound.json["merged"] as? String, newer)
            XCTAssertEqual((bound.json["customer"] as? [String: Any])?["id"] as? String, older)
            try await self.assertMerged(client, h, survivor: older, merged: newer)
        }
    }

    func assertMerged(_ client: some TestClientProtocol, _ h: Harness, survivor: String, merged: String) async throws {
        let c = try await client.get("/api/v1/customers/\(survivor)")
        XCTAssertEqual(c.status, .ok)
        let identities = (c.json["identities"] as? [[String: String]] ?? []).map { $0["value"] ?? "" }
        XCTAssertEqual(Set(identities), ["oOLD", "oNEW", "UNION1"])
        XCTAssertEqual(c.json["tags"] as? [String], ["source:expo-2026"])
        let consent = c.json["consent"] as? [String: Any] ?? [:]
        XCTAssertNotNil(consent["wechat:demo"])
        XCTAssertNotNil(consent["wechat:plain"])
        for (account, openid) in [("demo", "oOLD"), ("plain", "oNEW")] {
            let found = try await client.get("/api/v1/customers/lookup?account=\(account)&openid=\(openid)")
            XCTAssertEqual(found.json["id"] as? String, survivor)
        }
        let redirect = try await client.get("/api/v1/customers/\(merged)")
        XCTAssertEqual(redirect.status, .permanentRedirect)
        XCTAssertEqual(redirect.headers[.location], "/api/v1/customers/\(survivor)")
        let timeline = try await client.get("/api/v1/customers/\(survivor)/timeline").json["items"] as? [[String: Any]] ?? []
        let types = timeline.map { $0["type"] as? String ?? "" }
        XCTAssertEqual(types.filter { $0 == "event.subscribe" }.count, 2, "both timelines survive: \(types)")
        XCTAssertTrue(types.contains("customer.merged"))
        let ats = timeline.compactMap { $0["at"] as? Int }
        XCTAssertEqual(ats, ats.sorted(by: >), "newest first")
        let members = try await h.indexMembers("tag", "source:expo-2026")
        XCTAssertEqual(members, [survivor])
        let live = try await h.indexMembers("customers")
        XCTAssertEqual(live, [survivor])
    }

    func test_bindPhone_normalisesAndLooksUp_andRejectsBadInputWithoutStoring() async throws {
        let h = try Harness()
        try await h.test { client in
            try await self.subscribe(client, h, account: "demo", openid: "oP", unionId: nil)
            let id = try await self.id(client, account: "demo", openid: "oP")
            let ok = try await client.send(.post, "/api/v1/customers/\(id)/identities", json: #"{"type":"phone","value":"+86 138 0013 8000"}"#)
            XCTAssertEqual(ok.status, .ok)
            let found = try await client.get("/api/v1/customers/lookup?phone=%2B8613800138000")
            XCTAssertEqual(found.json["id"] as? String, id)

            let before = try await h.dbSize()
            for (body, code) in [
                (#"{"type":"phone","value":"12345"}"#, "invalid_identity"), (#"{"type":"fax","value":"1"}"#, "invalid_identity"),
                (#"{"value":"x"}"#, "invalid_body"), ("not json", "invalid_body"),
            ] {
                let r = try await client.send(.post, "/api/v1/customers/\(id)/identities", json: body)
                XCTAssertEqual(r.status, .badRequest, body)
                XCTAssertEqual(r.errorCode, code, body)
            }
            let missing = try await client.send(.post, "/api/v1/customers/01J0000000000000000000000Z/identities", json: #"{"type":"email","value":"a@b.co"}"#)
            XCTAssertEqual(missing.status, .notFound)
            let after = try await h.dbSize()
            XCTAssertEqual(after, before)
        }
    }
}
