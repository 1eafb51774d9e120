import Foundation
import GatewayCore
import Hummingbird
import HummingbirdTesting
import XCTest

@testable import App

/// `GET /api/v1/customers/{id}/messages`: the customer's messages newest first, paged by a cursor
/// that survives many messages made in the same millisecond (the test clock never moves), and the
/// console's customer page listing them with an "older" link.
final class CustomerMessagesTests: XCTestCase {
    func test_pagesWalkEveryMessageOnce_newestFirst() async throws {
        let h = try Harness()
        try await h.test { client in
            let created = try await client.send(
                .post, "/api/v1/events", json: #"{"events":[{"id":"m-1","type":"web.visit","identities":[{"type":"phone","value":"+8613800138123"}]}]}"#)
            let customer = try XCTUnwrap(created.value?.lookup("results.0.customer")?.scalarText)
            var sent = [String]()
            for i in 0..<23 {
                let r = try await client.send(
                    .post, "/api/v1/messages", json: #"{"channel":"sms","customerId":"\#(customer)","text":"note \#(i)","idempotencyKey":"note-\#(i)"}"#)
                XCTAssertEqual(r.status, .accepted, r.text)
                sent.append(try XCTUnwrap(r.json["id"] as? String))
            }
            var seen = [String]()
            var cursor: String?
            var pages = 0
            repeat {
                let r = try await client.get("/api/v1/customers/\(customer)/messages?limit=10" + (cursor.map { "&before=\($0)" } ?? ""))
                XCTAssertEqual(r.status, .ok, r.text)
                let messages = try XCTUnwrap(r.json["messages"] as? [[String: Any]])
                XCTAssertTrue(messages.allSatisfy { $0["customerId"] as? String == customer && $0["channel"] as? String == "sms" })
                seen += messages.compactMap { $0["id"] as? String }
                cursor = r.json["next"] as? String
                pages += 1
            } while cursor != nil && pages < 10
            XCTAssertEqual(pages, 3)
            XCTAssertEqual(seen, sent.sorted(by: >), "every message once, newest (by time, then id) first")

            for bad in ["limit=0", "limit=201", "before=yesterday", "before=12-notanid"] {
                let r = try await client.get("/api/v1/customers/\(customer)/messages?\(bad)")
                XCTAssertEqual(r.status, .badRequest, bad)
            }
            let missing = try await client.get("/api/v1/customers/01KZZZZZZZZZZZZZZZZZZZZZZZ/messages")
            XCTAssertEqual(missing.status, .notFound)

            // The console's 360 view lists them ten at a time, with the way to the older ones.
            let mara = try await ConsoleActionTests.signIn(client, "mara", role: "marketer")
            let page = try await client.execute(uri: "/console/customers/\(customer)", method: .get, headers: [.cookie: mara.cookie])
            let listed = page.text.matches(of: #/data-message="([0-9A-Za-z.]+)"/#).map { String($0.1) }
            XCTAssertEqual(listed, Array(sent.sorted(by: >).prefix(10)))
            let older = try XCTUnwrap(page.text.firstMatch(of: #/href="(/console/customers/[0-9A-Z]{26}\?msgs=[^"#]+)#h-messages" data-older-messages/#)?.1)
            let second = try await client.execute(uri: String(older), method: .get, headers: [.cookie: mara.cookie])
            let listedNext = second.text.matches(of: #/data-message="([0-9A-Za-z.]+)"/#).map { String($0.1) }
            XCTAssertEqual(listedNext, Array(sent.sorted(by: >)[10..<20]))
        }
    }
}
