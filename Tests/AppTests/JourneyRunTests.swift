import App
import Foundation
import GatewayCore
import HummingbirdTesting
import Store
import XCTest

/// Journeys running on a real Redis with the sandbox adapters: enrolment on an event, a send, a wait
/// (moved along by the harness clock), a second send, a tag; an exit event between the two sends; and
/// a late enrolment that skips a reminder whose moment has passed.
final class JourneyRunTests: XCTestCase {
    static let journey = """
        {"name": "Signup follow-up",
         "trigger": {"event": "web.signup"},
         "exitOn": [{"event": "web.register"}],
         "anchor": "profile.expo_date",
         "steps": [
           {"id": "hello", "send": {"channels": [{"channel": "sms", "text": "Hi {{#profile.nickname}}{{profile.nickname}}{{/profile.nickname}}{{^profile.nickname}}there{{/profile.nickname}}"}]}},
           {"id": "w", "wait": {"for": "PT10S"}},
           {"id": "again", "send": {"channels": [{"channel": "sms", "text": "Still there?"}]}},
           {"id": "eve", "wait": {"until": "anchor", "offset": "-P1D"}},
           {"id": "remind", "send": {"channels": [{"channel": "sms", "text": "Tomorrow!"}]}},
           {"id": "tagit", "tag": {"add": ["followed-up"]}}
         ]}
        """

    func test_enrolSendWaitExitAndLateSkip() async throws {
        let h = try Harness()
        let rig = try JourneyRig(h)
        defer { rig.stop() }
        let day: Int64 = 86_400_000
        try await h.test { client in
            func sms(_ to: String) async throws -> [String] { try await rig.sms(client, to) }
            func event(_ type: String, _ phone: String) async throws { try await rig.event(client, type, phone) }
            func until(_ what: String, _ condition: () async throws -> Bool) async throws { try await rig.until(what, condition) }
            let created = try await client.send(.post, "/api/v1/journeys", json: Self.journey)
            let id = try XCTUnwrap(created.json["id"] as? String, created.text)
            _ = try await client.send(.post, "/api/v1/journeys/\(id)/activate", json: "{}")
            try await Task.sleep(for: .milliseconds(500))  // the trigger consumer reads from its start; active journeys are re-read 4 times a second

            // Ann (expo in 5 days) and Bob (expo in 5 days too) sign up; Cy's expo is 12 hours away.
            let phones = ["+8613800000501", "+8613800000502", "+8613800000503"]
            // Each is known (a visit) and has an expo date before signing up: the anchor is read at enrolment.
            for (i, phone) in phones.enumerated() {
                try await event("web.visit", phone)
                let cid = try await Self.customer(client, phone)
                let f = ISO8601DateFormatter()
                let expo = f.string(from: Date(timeIntervalSince1970: Double(h.now + (i == 2 ? day / 2 : 5 * day)) / 1000))
                _ = try await client.send(.patch, "/api/v1/customers/\(cid)", json: #"{"profile":{"expo_date":"\#(expo)"}}"#)
                try await event("web.signup", phone)
            }
            try await until("the first sends") {
                var counts = [Int]()
                for p in phones { counts.append(try await sms(p).count) }
                return counts == [1, 1, 1]
            }
            let first = try await sms(phones[0])
            XCTAssertEqual(first, ["Hi there"])

            // Bob registers: he leaves before the second send. Ten seconds later the others get it.
            try await event("web.register", phones[1])
            try await until("Bob's exit") { try await JourneyRunStore(redis: h.redis).stats(id)["exited"] == 1 }
            h.now += 11_000
            try await until("the second sends") {
                let ann = try await sms(phones[0]).count
                let cy = try await sms(phones[2]).count
                return ann == 2 && cy == 2
            }
            // Ann waits for the eve of her expo; Cy's eve has passed: her reminder is skipped, she is tagged.
            let cyId = try await Self.customer(client, phones[2])
            try await until("Cy's tag") { try await h.redis.send("SISMEMBER", h.shard(cyId).key(single: Keys.tag("followed-up")), cyId).int == 1 }
            let cy = try await sms(phones[2]), bob = try await sms(phones[1])
            XCTAssertEqual(cy.count, 2, "no late reminder")
            XCTAssertEqual(bob.count, 1, "nothing after the exit")
            h.now += 4 * day
            try await until("Ann's reminder") { try await sms(phones[0]).count == 3 }

            let stats = try await JourneyRunStore(redis: h.redis).stats(id)
            XCTAssertEqual(stats["enrolled"], 3)
            XCTAssertEqual(stats["exited"], 1)
            XCTAssertEqual(stats["s:hello:queued"], 3)
            XCTAssertEqual(stats["s:hello:sent"], 3, "counted by the outbound ledger")
            XCTAssertEqual(stats["s:again:sent"], 2)
            XCTAssertEqual(stats["s:remind:skipped:late"], 1)
            XCTAssertEqual(stats["s:eve:skipped:late"], 1)
            try await until("Ann's tag") { try await JourneyRunStore(redis: h.redis).stats(id)["completed"] == 2 }

            // Reentry is never: Ann signing up again does not start over.
            try await event("web.signup", phones[0])
            try await Task.sleep(for: .milliseconds(300))
            let enrolled = try await JourneyRunStore(redis: h.redis).stats(id)["enrolled"]
            XCTAssertEqual(enrolled, 3)
        }
    }

    static func customer(_ client: some TestClientProtocol, _ phone: String) async throws -> String {
        let r = try await client.get("/api/v1/customers/lookup?phone=%2B\(phone.dropFirst())").json
        return r["id"] as? String ?? ""
    }
}
