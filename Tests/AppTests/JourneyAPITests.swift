import Foundation
import GatewayCore
import HummingbirdTesting
import Store
import XCTest
import Yams

/// `/api/v1/journeys` on a real Redis: a definition is checked whole (400 naming the field, nothing
/// stored), saved as a draft, edited into new versions, and moved through its states.
final class JourneyAPITests: XCTestCase {
    static let expo = """
        {"name": "Expo 2026 reminders",
         "trigger": {"event": "subscribe", "scene": "expo2026"},
         "anchor": "profile.expo_date",
         "exitOn": [{"event": "web.register"}],
         "steps": [
           {"id": "invite", "send": {"channels": [{"channel": "wechat", "account": "demo", "template": "T1", "data": {"first": "Hi {{profile.nickname}}"}},
                                                  {"channel": "sms", "text": "See you at Expo 2026"}]}},
           {"id": "w1", "wait": {"until": "anchor", "offset": "-P1D"}},
           {"id": "remind", "send": {"channels": [{"channel": "sms", "text": "Tomorrow!"}]}},
           {"id": "done", "tag": {"add": ["expo-2026-invited"]}}
         ]}
        """

    func test_createShowEditAndLifecycle() async throws {
        let h = try Harness()
        try await h.test { client in
            let created = try await client.send(.post, "/api/v1/journeys", json: Self.expo)
            XCTAssertEqual(created.status, .created, created.text)
            let id = try XCTUnwrap(created.json["id"] as? String)
            XCTAssertEqual(created.json["state"] as? String, "draft")
            XCTAssertEqual(created.json["version"] as? Int, 1)
            let steps = (created.json["definition"] as? [String: Any])?["steps"] as? [[String: Any]]
            XCTAssertEqual(steps?.compactMap { $0["id"] as? String }, ["invite", "w1", "remind", "done"])

            // An edit is version 2; an edit made on version 1 again is refused (someone saved meanwhile).
            let edited = Self.expo.replacingOccurrences(of: "Tomorrow!", with: "Tomorrow at 9!")
            let v2 = try await client.send(.put, "/api/v1/journeys/\(id)", json: #"{"baseVersion": 1, "definition": \#(edited)}"#)
            XCTAssertEqual(v2.json["version"] as? Int, 2, v2.text)
            let stale = try await client.send(.put, "/api/v1/journeys/\(id)", json: #"{"baseVersion": 1, "definition": \#(edited)}"#)
            XCTAssertEqual(stale.status, .conflict)
            XCTAssertEqual(stale.errorCode, "version_conflict")
            let v1 = try await JourneyStore(redis: h.redis).definition(id, version: 1)
            XCTAssertEqual(v1?.steps[2].send?.channels.first?.text, "Tomorrow!", "version 1 is kept for those enrolled on it")

            for (action, state) in [("activate", "active"), ("pause", "paused"), ("resume", "active"), ("archive", "archived")] {
                let r = try await client.send(.post, "/api/v1/journeys/\(id)/\(action)", json: "{}")
                XCTAssertEqual(r.json["state"] as? String, state, "\(action): \(r.text)")
                let active = try await h.redis.send("SISMEMBER", Keys.activeJourneys, id).int
                XCTAssertEqual(active, state == "active" ? 1 : 0, action)
            }
            let again = try await client.send(.post, "/api/v1/journeys/\(id)/activate", json: "{}")
            XCTAssertEqual(again.status, .conflict)
            XCTAssertEqual(again.errorCode, "illegal_transition")
            let frozen = try await client.send(.put, "/api/v1/journeys/\(id)", json: #"{"baseVersion": 2, "definition": \#(edited)}"#)
            XCTAssertEqual(frozen.status, .conflict, "an archived journey is not edited")

            let list = try await client.get("/api/v1/journeys").json["journeys"] as? [[String: Any]]
            XCTAssertEqual(list?.compactMap { $0["id"] as? String }, [id])
            let missing = try await client.get("/api/v1/journeys/01KZZZZZZZZZZZZZZZZZZZZZZZ")
            XCTAssertEqual(missing.status, .notFound)
            for bad in ["01KZZZZZZZZZZZZZZZZZZZZZZZ", "not-an-id"] {
                let nobody = try await client.get("/api/v1/customers/\(bad)/journeys")
                XCTAssertEqual(nobody.status, .notFound, bad)
                XCTAssertEqual(nobody.errorCode, "not_found", nobody.text)
            }
        }
    }

    func test_shippedExampleJourneys_areAccepted() async throws {
        let h = try Harness { $0.outbound.linkSecret = "test-link-secret-0123456789" }  // their branches read clicks
        try await h.test { client in
            for name in ["expo-reminders", "welcome-nurture"] {
                let path = EventsAPITests.root.appendingPathComponent("examples/journeys/\(name).yaml").path
                let definition = try XCTUnwrap(try Yams.load(yaml: String(contentsOfFile: path, encoding: .utf8)) as? [String: Any])
                let json = String(decoding: try JSONSerialization.data(withJSONObject: definition), as: UTF8.self)
                let r = try await client.send(.post, "/api/v1/journeys", json: json)
                XCTAssertEqual(r.status, .created, "\(name): \(r.text)")
            }
        }
    }

    func test_badDefinitions_answer400NamingTheField_andStoreNothing() async throws {
        let h = try Harness()
        let cases: [(String, String, String)] = [
            (#""offset": "-P1D""#, #""offset": "-P1M""#, "steps[1].wait.offset"),
            (#""anchor": "profile.expo_date""#, #""anchor": "profile.city""#, "anchor"),
            (#""account": "demo""#, #""account": "nobody""#, "steps[0].send.channels[0].account"),
            (#""channel": "sms", "text": "Tomorrow!""#, #""channel": "fax", "text": "Tomorrow!""#, "steps[2].send.channels[0].channel"),
            (#""first": "Hi {{profile.nickname}}""#, #""first": "Hi {{#profile.nickname}}""#, "steps[0].send.channels[0].data.first"),
            (#"{"id": "done", "tag": {"add": ["expo-2026-invited"]}}"#, #"{"id": "done", "tag": {"add": ["expo-2026-invited"]}, "next": "done"}"#, "steps"),
            (#""trigger": {"event": "subscribe", "scene": "expo2026"}"#, #""trigger": {"audience": "vip &"}"#, "trigger.audience"),
            (#""trigger": {"event": "subscribe", "scene": "expo2026"}"#, #""trigger": {"stage": "M Q L"}"#, "trigger.stage"),
            (#"{"id": "done", "tag": {"add": ["expo-2026-invited"]}}"#, #"{"id": "done", "update": {"shoe_size": 42}}"#, "steps[3].update.shoe_size"),
            (#"{"id": "done", "tag": {"add": ["expo-2026-invited"]}}"#, #"{"id": "done", "crm": {"qualify": false}}"#, "steps[3].crm"),
            (#"{"id": "done", "tag": {"add": ["expo-2026-invited"]}}"#, #"{"id": "done", "branch": {"if": {"clicked": "remind"}, "then": "w1", "else": "invite"}}"#, "steps[3].branch.if.clicked"),
            (#"{"id": "done", "tag": {"add": ["expo-2026-invited"]}}"#, #"{"id": "done", "branch": {"if": {"attribute": "profile.nope>=3"}, "then": "w1", "else": "invite"}}"#, "steps[3].branch.if.attribute"),
        ]
        try await h.test { client in
            for (old, new, field) in cases {
                XCTAssertTrue(Self.expo.contains(old), old)
                let r = try await client.send(.post, "/api/v1/journeys", json: Self.expo.replacingOccurrences(of: old, with: new))
                XCTAssertEqual(r.status, .badRequest, "\(field): \(r.text)")
                let message = (r.json["error"] as? [String: Any])?["message"] as? String ?? ""
                XCTAssertTrue(message.hasPrefix(field + ":"), "\(field): \(r.text)")
            }
            let truncated = try await client.send(.post, "/api/v1/journeys", json: #"{"name": "x", "steps": []}"#)
            XCTAssertEqual(truncated.status, .badRequest)
        }
        let stored = try await h.redis.send("KEYS", "journey*").strings
        XCTAssertEqual(stored, [], "nothing stored")
    }

    func test_versions_newestFirst_eachWithItsDefinition() async throws {
        let h = try Harness()
        try await h.test { client in
            let created = try await client.send(.post, "/api/v1/journeys", json: Self.expo)
            let id = try XCTUnwrap(created.json["id"] as? String)
            let edited = Self.expo.replacingOccurrences(of: "Tomorrow!", with: "See you tomorrow")
            _ = try await client.send(.put, "/api/v1/journeys/\(id)", json: #"{"baseVersion": 1, "definition": \#(edited)}"#)
            let versions = try await client.get("/api/v1/journeys/\(id)/versions")
            XCTAssertEqual(versions.status, .ok)
            let list = try XCTUnwrap(versions.json["versions"] as? [[String: Any]])
            XCTAssertEqual(list.map { $0["version"] as? Int }, [2, 1])
            XCTAssertEqual(list.map { $0["current"] as? Bool }, [true, false])
            XCTAssertTrue(String(describing: list[0]["definition"] ?? "").contains("See you tomorrow"))
            XCTAssertTrue(String(describing: list[1]["definition"] ?? "").contains("Tomorrow!"))
            let missing = try await client.get("/api/v1/journeys/01KZZZZZZZZZZZZZZZZZZZZZZZ/versions")
            XCTAssertEqual(missing.status, .notFound)
        }
    }
}
