import App
import Foundation
import GatewayCore
import HTTPTypes
import HummingbirdTesting
import Store
import XCTest

/// Journeys over time on a real Redis with the sandbox SMS adapter and the harness clock: a branch on
/// a click of a tracked link (`/l/{token}`), a wait woken early by its event, pause and resume,
/// customers finishing on the version they entered, reentry after a while, and quiet hours that
/// never push a send past the next wait.
final class JourneyLifecycleTests: XCTestCase {
    static func journey(last: String) -> String {
        """
        {"name": "Click follow-up", "trigger": {"event": "web.signup"}, "reentry": "after:PT1M",
         "steps": [
           {"id": "offer", "send": {"channels": [{"channel": "sms", "text": "Offer: https://example.com/offer"}]}},
           {"id": "w", "wait": {"for": "PT10S", "orEvent": {"event": "web.ping"}}},
           {"id": "clicked", "branch": {"if": {"clicked": "offer"}, "then": "thanks", "else": "nudge"}},
           {"id": "nudge", "send": {"channels": [{"channel": "sms", "text": "\(last)"}]}, "next": "end"},
           {"id": "thanks", "send": {"channels": [{"channel": "sms", "text": "Thanks for looking"}]}},
           {"id": "end", "exit": true}]}
        """
    }

    func test_clickBranch_orEvent_pauseResume_versions_andReentry() async throws {
        let h = try Harness { $0.outbound.linkSecret = "test-link-secret-0123456789" }
        let rig = try JourneyRig(h)
        defer { rig.stop() }
        try await h.test { client in
            let id = try await rig.create(client, Self.journey(last: "Last chance"))
            _ = try await client.send(.post, "/api/v1/journeys/\(id)/activate", json: "{}")
            try await Task.sleep(for: .milliseconds(400))
            let (ann, bob, cy, dan, eve) = ("+8613800000701", "+8613800000702", "+8613800000703", "+8613800000704", "+8613800000705")
            for p in [ann, bob, cy] { try await rig.event(client, "web.signup", p) }
            try await rig.until("the offers") {
                var n = 0
                for p in [ann, bob, cy] { n += try await rig.sms(client, p).count }
                return n == 3
            }
            let annOffers = try await rig.sms(client, ann)
            let offer = try XCTUnwrap(annOffers.first)
            let base = h.config.outbound.publicURL
            XCTAssertTrue(offer.hasPrefix("Offer: \(base)/l/"), "a tracked link: \(offer)")
            let clicked = try await client.execute(
                uri: String(offer.dropFirst("Offer: ".count + base.count)), method: .get, headers: [.userAgent: "Mozilla/5.0 (iPhone) MicroMessenger/8.0"])
            XCTAssertEqual(clicked.status, .found)
            XCTAssertEqual(clicked.headers[.location], "https://example.com/offer")

            // Cy's wait ends early on its event; Ann and Bob wait the ten seconds.
            try await rig.event(client, "web.ping", cy)
            try await rig.until("Cy woken") { try await rig.sms(client, cy).last == "Last chance" }
            let annCount = try await rig.sms(client, ann).count
            XCTAssertEqual(annCount, 1, "Ann still waits")
            h.now += 11_000
            try await rig.until("the branch") {
                let a = try await rig.sms(client, ann), b = try await rig.sms(client, bob)
                return a.count == 2 && b.count == 2
            }
            let annGot = try await rig.sms(client, ann), bobGot = try await rig.sms(client, bob)
            XCTAssertEqual(annGot.last, "Thanks for looking", "clicked")
            XCTAssertEqual(bobGot.last, "Last chance", "did not click")

            var report = try await client.get("/api/v1/journeys/\(id)").json["report"] as? [String: Any] ?? [:]
            var steps = Dictionary(uniqueKeysWithValues: (report["steps"] as? [[String: Any]] ?? []).map { ($0["id"] as? String ?? "", $0) })
            XCTAssertEqual(steps["offer"]?["clicked"] as? Int, 1)
            XCTAssertEqual(steps["offer"]?["queued"] as? Int, 3)
            XCTAssertEqual(steps["clicked"]?["then"] as? Int, 1)
            XCTAssertEqual(steps["clicked"]?["else"] as? Int, 2)
            let annId = try await JourneyRunTests.customer(client, ann)
            let mine = try await client.get("/api/v1/customers/\(annId)/journeys").json
            let entry = try XCTUnwrap((mine["journeys"] as? [[String: Any]])?.first)
            XCTAssertEqual(entry["state"] as? String, "done")
            let history = entry["history"] as? [[String: Any]] ?? []
            XCTAssertEqual(history.map { $0["step"] as? String }, ["offer", "thanks"])
            XCTAssertNotNil(history.first?["clickedAt"] as? String, "the click is in the history")

            // Pause: Dan's due step waits and nobody new enters; an edit makes version 2 meanwhile.
            try await rig.event(client, "web.signup", dan)
            try await rig.until("Dan's offer") { try await rig.sms(client, dan).count == 1 }
            let paused = try await client.send(.post, "/api/v1/journeys/\(id)/pause", json: "{}")
            XCTAssertEqual(paused.json["state"] as? String, "paused")
            let edited = try await client.send(
                .put, "/api/v1/journeys/\(id)", json: #"{"baseVersion": 1, "definition": \#(Self.journey(last: "Final call"))}"#)
            XCTAssertEqual(edited.json["version"] as? Int, 2, edited.text)
            try await rig.event(client, "web.signup", eve)
            h.now += 11_000
            try await Task.sleep(for: .milliseconds(700))
            let danPaused = try await rig.sms(client, dan), evePaused = try await rig.sms(client, eve)
            XCTAssertEqual(danPaused.count, 1, "nothing runs while paused")
            XCTAssertEqual(evePaused.count, 0, "nobody enters while paused")
            _ = try await client.send(.post, "/api/v1/journeys/\(id)/resume", json: "{}")
            h.now += 1_000  // a held step is looked at again a second later
            try await rig.until("Dan's nudge") { try await rig.sms(client, dan).count == 2 }
            let danGot = try await rig.sms(client, dan)
            XCTAssertEqual(danGot.last, "Last chance", "Dan finishes on version 1")
            try await Task.sleep(for: .milliseconds(300))
            try await rig.event(client, "web.signup", eve)
            try await rig.until("Eve's offer") { try await rig.sms(client, eve).count == 1 }
            try await rig.event(client, "web.ping", eve)
            try await rig.until("Eve's nudge") { try await rig.sms(client, eve).count == 2 }
            let eveGot = try await rig.sms(client, eve)
            XCTAssertEqual(eveGot.last, "Final call", "new enrolments take version 2")

            // Reentry after a minute: Ann's second signup now does nothing, one a minute later starts again.
            let before = try await rig.stats(id)["enrolled"]
            try await rig.event(client, "web.signup", ann)
            try await Task.sleep(for: .milliseconds(300))
            let tooSoon = try await rig.stats(id)["enrolled"]
            XCTAssertEqual(tooSoon, before, "within a minute of the last enrolment")
            h.now += 61_000
            try await rig.event(client, "web.signup", ann)
            try await rig.until("Ann again") { try await rig.sms(client, ann).count == 3 }
            report = try await client.get("/api/v1/journeys/\(id)").json["report"] as? [String: Any] ?? [:]
            steps = Dictionary(uniqueKeysWithValues: (report["steps"] as? [[String: Any]] ?? []).map { ($0["id"] as? String ?? "", $0) })
            XCTAssertEqual(report["enrolled"] as? Int, 6)
            XCTAssertEqual(steps["w"]?["waiting"] as? Int, 1, "Ann waits again")

            // Archiving lets the customers still in go: Ann's due step does nothing, and leaving so is no conversion.
            _ = try await client.send(.post, "/api/v1/journeys/\(id)/archive", json: "{}")
            h.now += 11_000
            try await rig.until("Ann let go") { try await rig.stats(id)["exited"] == 1 }
            try await Task.sleep(for: .milliseconds(300))
            let afterArchive = try await rig.sms(client, ann).count
            XCTAssertEqual(afterArchive, 3, "nothing after the archive")
            let converted = try await rig.stats(id)["converted"]
            XCTAssertNil(converted, "an archive is not a conversion")
        }
    }

    func test_quietHours_deferASend_butNeverPastTheNextWait() async throws {
        // The harness clock reads 22:13 in Shanghai: quiet until 08:00.
        let h = try Harness { $0.contactRules.quietHours = ContactRules.QuietHours(startMinute: 21 * 60, endMinute: 8 * 60) }
        let rig = try JourneyRig(h)
        defer { rig.stop() }
        try await h.test { client in
            let id = try await rig.create(
                client,
                #"""
                {"name": "Night owls", "trigger": {"event": "web.signup"},
                 "steps": [
                   {"id": "soon", "send": {"channels": [{"channel": "sms", "text": "Before the wait"}]}},
                   {"id": "w", "wait": {"for": "PT1H"}},
                   {"id": "later", "send": {"channels": [{"channel": "sms", "text": "After the wait"}]}},
                   {"id": "w2", "wait": {"for": "P1D"}}]}
                """#)
            _ = try await client.send(.post, "/api/v1/journeys/\(id)/activate", json: "{}")
            try await Task.sleep(for: .milliseconds(400))
            let phone = "+8613800000801"
            try await rig.event(client, "web.signup", phone)
            let cid = try await JourneyRunTests.customer(client, phone)
            func history() async throws -> [String: [String: Any]] {
                let r = try await client.get("/api/v1/customers/\(cid)/journeys").json
                let h = ((r["journeys"] as? [[String: Any]])?.first?["history"] as? [[String: Any]]) ?? []
                return Dictionary(uniqueKeysWithValues: h.map { ($0["step"] as? String ?? "", $0) })
            }
            try await rig.until("the first send skipped") { try await history()["soon"]?["state"] as? String == "skipped" }
            let soon = try await history()["soon"]
            XCTAssertEqual(soon?["reason"] as? String, "expired_while_deferred:quiet_hours", "quiet until 08:00 is past the wait an hour away")
            h.now += 3_600_000 + 1_000  // 23:13: still quiet, but the next wait is a day away
            try await rig.until("the second send deferred") { try await history()["later"]?["state"] as? String == "retrying" }
            try await Task.sleep(for: .milliseconds(300))
            let quiet = try await rig.sms(client, phone)
            XCTAssertEqual(quiet, [], "nothing during quiet hours")
            h.now += 9 * 3_600_000  // 08:13
            try await rig.until("the morning send") { try await rig.sms(client, phone) == ["After the wait"] }
        }
    }
}
