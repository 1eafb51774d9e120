import Foundation
import GatewayCore
import Hummingbird
import HummingbirdTesting
import XCTest

@testable import App

/// Campaign, journey and import lists are newest first and paged by cursor (`next`, given back as
/// `before`): every item once, even when all were made in the same millisecond (the test clock never
/// moves); the console's lists link to the older page.
final class ListPagingTests: XCTestCase {
    /// Follows `next` from the first page; answers the ids in the order seen and how many pages it took.
    static func walk(_ client: some TestClientProtocol, _ path: String, field: String, limit: Int) async throws -> (ids: [String], pages: Int) {
        var ids = [String]()
        var cursor: String?
        var pages = 0
        repeat {
            let r = try await client.get("\(path)?limit=\(limit)" + (cursor.map { "&before=\($0)" } ?? ""))
            XCTAssertEqual(r.status, .ok, r.text)
            ids += (r.json[field] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            cursor = r.json["next"] as? String
            pages += 1
        } while cursor != nil && pages < 20
        return (ids, pages)
    }

    func test_campaignsAndJourneys_pageByCursor_newestFirst() async throws {
        let h = try Harness()
        try await h.test { client in
            _ = try await client.send(.post, "/api/v1/tags", json: #"{"name":"vip"}"#)
            var campaigns = [String](), journeys = [String]()
            for i in 0..<7 {
                let c = try await client.send(.post, "/api/v1/campaigns", json: #"{"name":"c\#(i)","audience":"vip","channels":[{"channel":"sms","text":"hi"}]}"#)
                campaigns.append(try XCTUnwrap(c.json["id"] as? String, c.text))
                let j = try await client.send(.post, "/api/v1/journeys", json: JourneyAPITests.expo.replacingOccurrences(of: "Expo 2026 reminders", with: "j\(i)"))
                journeys.append(try XCTUnwrap(j.json["id"] as? String, j.text))
            }
            let c = try await Self.walk(client, "/api/v1/campaigns", field: "campaigns", limit: 3)
            XCTAssertEqual(c.ids, campaigns.sorted(by: >))
            XCTAssertEqual(c.pages, 3)
            let j = try await Self.walk(client, "/api/v1/journeys", field: "journeys", limit: 7)
            XCTAssertEqual(j.ids, journeys.sorted(by: >))
            XCTAssertEqual(j.pages, 1, "a page that holds everything has no next")
            for path in ["/api/v1/campaigns", "/api/v1/journeys", "/api/v1/imports"] {
                for bad in ["before=abc", "before=1-notanid", "limit=0", "limit=501"] {
                    let r = try await client.get("\(path)?\(bad)")
                    XCTAssertEqual(r.status, .badRequest, "\(path)?\(bad)")
                }
            }

            // The console shows 50 a page; with 7 there is no older link, and `before` moves on.
            let mara = try await ConsoleActionTests.signIn(client, "mara", role: "marketer")
            let first = try await client.execute(uri: "/console/campaigns", method: .get, headers: [.cookie: mara.cookie])
            XCTAssertFalse(first.text.contains("data-older"))
            let cursor = try await client.get("/api/v1/campaigns?limit=2").json["next"] as? String
            let later = try await client.execute(uri: "/console/campaigns?before=\(try XCTUnwrap(cursor))", method: .get, headers: [.cookie: mara.cookie])
            let shown = later.text.matches(of: #/href="/console/campaigns/([0-9A-Z]{26})"/#).map { String($0.1) }
            XCTAssertEqual(shown, Array(campaigns.sorted(by: >).dropFirst(2)))
            XCTAssertTrue(later.text.contains(#"<a href="/console/campaigns">"#), "a later page links back to the newest")
        }
    }
}
