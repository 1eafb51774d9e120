import App
import Foundation
import GatewayCore
import HummingbirdTesting
import Store
import XCTest

/// Journeys triggered by a tag added, a stage reached and an audience at activation, with update,
/// crm and attribute-branch steps, on a real Redis with the journey runner and the outbound engine.
final class JourneyTriggerTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func test_tagStageAndAudienceTriggers_withUpdateCrmAndAttributeBranch() async throws {
        let h = try Harness { $0.scoringRules = Self.root.appendingPathComponent("config/scoring.yaml").path }
        let rules = try XCTUnwrap(try ScoringWorker.rules(config: h.config))
        let rig = try JourneyRig(h)
        let scoring = Task { await ScoringWorker(redis: h.redis, rules: rules, timelineCap: 500, clock: h.clock).loop() }
        defer {
            rig.stop()
            scoring.cancel()
        }
        _ = try await CustomerStore(redis: h.redis, config: h.config).prepareIndexes()  // as the gateway does at start
        try await h.test { client in
            let vip = try await rig.create(
                client,
                #"""
                {"name": "VIP welcome", "trigger": {"tagAdded": "vip"},
                 "steps": [
                   {"id": "where", "branch": {"if": {"attribute": "profile.city=Shanghai"}, "then": "sh", "else": "elsewhere"}},
                   {"id": "sh", "update": {"nickname": "Shanghai VIP", "company": null}, "next": "done"},
                   {"id": "elsewhere", "tag": {"add": ["vip-elsewhere"]}},
                   {"id": "done", "exit": true}]}
                """#)
            let mql = try await rig.create(
                client,
                #"""
                {"name": "MQL hand-off", "trigger": {"stage": "MQL"},
                 "steps": [{"id": "handoff", "crm": {"qualify": true, "note": "Reached MQL: call within a day"}}]}
                """#)
            for id in [vip, mql] {
                let r = try await client.send(.post, "/api/v1/journeys/\(id)/activate", json: "{}")
                XCTAssertEqual(r.status, .ok, r.text)
            }
            try await Task.sleep(for: .milliseconds(400))  // the runners see the new journeys and what they watch

            let ann = try await rig.customer(client, "+8613800000601", profile: #"{"city":"Shanghai","company":"Acme"}"#)
            let bob = try await rig.customer(client, "+8613800000602", profile: #"{"city":"Beijing"}"#)
            _ = try await client.send(.post, "/api/v1/tags", json: #"{"name":"vip"}"#)
            let tagged = try await client.send(.post, "/api/v1/tags/vip/customers", json: #"{"customerIds":["\#(ann)","\#(bob)"]}"#)
            XCTAssertEqual(tagged.status, .ok, tagged.text)
            try await rig.until("both VIPs through") { try await rig.stats(vip)["completed"] == 2 }
            let a = try await h.redis.send("HGETALL", Keys.customer(ann)).dictionary
            XCTAssertEqual(a["profile.nickname"], "Shanghai VIP", "the update step")
            XCTAssertNil(a["profile.company"], "null removes an attribute")
            let bobTags = try await h.redis.send("SMEMBERS", Keys.customerTags(bob)).strings.sorted()
            XCTAssertEqual(bobTags, ["vip", "vip-elsewhere"], "the else branch")
            let stats = try await rig.stats(vip)
            XCTAssertEqual(stats["s:where:then"], 1)
            XCTAssertEqual(stats["s:where:else"], 1)
            // Tagging again adds nothing new: no second enrolment (and reentry is never anyway).
            _ = try await client.send(.post, "/api/v1/tags/vip/customers", json: #"{"customerIds":["\#(ann)"]}"#)

            // A lead scored up to MQL by its interactions enters the hand-off: qualified, with a note the CRM sync carries.
            func send(_ xml: String) async throws {
                h.now += 1000
                let r = try await client.callback(try h.builder("demo").post(xml: xml, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false))
                XCTAssertEqual(r.status, .ok)
            }
            try await send(SampleCallbacks.event(to: "gh", from: "oLEAD", event: "subscribe", eventKey: "qrscene_expo2026", createTime: h.nowSeconds))
            for _ in 0..<2 { try await send(SampleCallbacks.event(to: "gh", from: "oLEAD", event: "CLICK", eventKey: "MENU_PRICING", createTime: h.nowSeconds)) }
            try await send(SampleCallbacks.text(to: "gh", from: "oLEAD", content: "Could we book a demo?", msgId: "9001", createTime: h.nowSeconds))
            let found = try await client.get("/api/v1/customers/lookup?account=demo&openid=oLEAD").json
            let lead = try XCTUnwrap(found["id"] as? String)
            try await rig.until("the hand-off") { try await rig.stats(mql)["completed"] == 1 }
            let l = try await h.redis.send("HGETALL", Keys.customer(lead)).dictionary
            XCTAssertEqual(l["stage"], "MQL")
            XCTAssertNotNil(l["qualifiedAt"])
            let timeline = try await h.redis.send("LRANGE", Keys.customerTimeline(lead), "0", "-1").strings
            XCTAssertTrue(timeline.contains { $0.contains(#""type":"journey.note""#) && $0.contains("call within a day") }, "\(timeline)")
            let crm = try await h.redis.send("XRANGE", Keys.crmStream, "-", "+").array ?? []
            XCTAssertTrue(crm.contains { $0.array?.last?.dictionary["customer"] == lead }, "the CRM adapters sync the lead again")
            let vipEnrolled = try await rig.stats(vip)["enrolled"]
            XCTAssertEqual(vipEnrolled, 2, "the lead was never tagged vip")

            // An audience journey enrols the members at its activation, once.
            let audience = try await rig.create(
                client, #"{"name": "Shanghai VIPs", "trigger": {"audience": "vip & profile.city=Shanghai"}, "steps": [{"id": "mark", "tag": {"add": ["sh-vip"]}}]}"#)
            let activated = try await client.send(.post, "/api/v1/journeys/\(audience)/activate", json: "{}")
            XCTAssertEqual(activated.status, .ok, activated.text)
            try await rig.until("the audience enrolled") { try await rig.stats(audience)["completed"] == 1 }
            let marked = try await h.indexMembers("tag", "sh-vip")
            XCTAssertEqual(marked, [ann])
            let shown = try await client.get("/api/v1/journeys/\(audience)").json
            let report = try XCTUnwrap(shown["report"] as? [String: Any])
            XCTAssertEqual((report["audience"] as? [String: Any])?["members"] as? Int, 1)
            XCTAssertEqual((report["audience"] as? [String: Any])?["toEnrol"] as? Int, 0)
            let mark = try XCTUnwrap((report["steps"] as? [[String: Any]])?.first)
            XCTAssertEqual(mark["entered"] as? Int, 1)
            XCTAssertEqual(mark["completed"] as? Int, 1)
            XCTAssertEqual(mark["waiting"] as? Int, 0)
        }
    }

    func test_branchOnAnEventSinceEnrolment() async throws {
        let h = try Harness()
        let rig = try JourneyRig(h)
        defer { rig.stop() }
        try await h.test { client in
            let id = try await rig.create(
                client,
                #"""
                {"name": "Download follow-up", "trigger": {"event": "web.signup"},
                 "steps": [
                   {"id": "w", "wait": {"for": "PT10S"}},
                   {"id": "did", "branch": {"if": {"event": "web.download"}, "then": "yes", "else": "no"}},
                   {"id": "yes", "tag": {"add": ["downloaded"]}, "next": "end"},
                   {"id": "no", "tag": {"add": ["no-download"]}},
                   {"id": "end", "exit": true}]}
                """#)
            _ = try await client.send(.post, "/api/v1/journeys/\(id)/activate", json: "{}")
            try await Task.sleep(for: .milliseconds(400))
            let (ann, bob) = ("+8613800000901", "+8613800000902")
            // Bob downloaded before he signed up: that is not since his enrolment.
            try await rig.event(client, "web.download", bob)
            h.now += 1_000
            for p in [ann, bob] { try await rig.event(client, "web.signup", p) }
            try await rig.until("both enrolled") { try await rig.stats(id)["enrolled"] == 2 }
            h.now += 1_000
            try await rig.event(client, "web.download", ann)
            h.now += 10_000
            try await rig.until("both through") { try await rig.stats(id)["completed"] == 2 }
            let annId = try await JourneyRunTests.customer(client, ann), bobId = try await JourneyRunTests.customer(client, bob)
            let annTags = try await h.redis.send("SMEMBERS", Keys.customerTags(annId)).strings
            let bobTags = try await h.redis.send("SMEMBERS", Keys.customerTags(bobId)).strings
            XCTAssertEqual(annTags, ["downloaded"])
            XCTAssertEqual(bobTags, ["no-download"])
        }
    }
}

/// A harness with the outbound engine and the journey runner working, and helpers journey tests share.
struct JourneyRig {
    let h: Harness
    let workers: Task<Void, Never>

    init(_ h: Harness) throws {
        self.h = h
        let parts = makeOutbound(config: h.config, redis: h.redis, adapters: try loadAdapters(config: h.config, environment: [:]), clock: h.clock)
        workers = Task {
            await withTaskGroup(of: Void.self) { g in
                g.addTask { try? await parts.engine.run() }
                g.addTask { await parts.journeys.run(intervalMs: 20) }
            }
        }
    }

    func stop() { workers.cancel() }

    func create(_ client: some TestClientProtocol, _ json: String) async throws -> String {
        let r = try await client.send(.post, "/api/v1/journeys", json: json)
        return try XCTUnwrap(r.json["id"] as? String, r.text)
    }

    func stats(_ journey: String) async throws -> [String: Int] { try await JourneyRunStore(redis: h.redis).stats(journey) }

    func until(_ what: String, _ condition: () async throws -> Bool) async throws {
        for _ in 0..<300 { if try await condition() { return }; try await Task.sleep(for: .milliseconds(20)) }
        XCTFail("timed out waiting for \(what)")
    }

    /// An interaction from the events API for the customer holding `phone`.
    func event(_ client: some TestClientProtocol, _ type: String, _ phone: String) async throws {
        let r = try await client.send(.post, "/api/v1/events", json: #"{"events":[{"type":"\#(type)","identity":{"type":"phone","value":"\#(phone)"}}]}"#)
        XCTAssertEqual(r.status, .ok, r.text)
    }

    /// A customer known by `phone` (made by an event), with `profile` set.
    func customer(_ client: some TestClientProtocol, _ phone: String, profile: String? = nil) async throws -> String {
        try await event(client, "web.visit", phone)
        let id = try await JourneyRunTests.customer(client, phone)
        if let profile { _ = try await client.send(.patch, "/api/v1/customers/\(id)", json: #"{"profile":\#(profile)}"#) }
        return id
    }

    /// The SMS texts the sandbox got for `phone`, decoded.
    func sms(_ client: some TestClientProtocol, _ to: String) async throws -> [String] {
        let r = try await client.get("/api/v1/sandbox/messages?channel=sms&limit=100").json["messages"] as? [[String: Any]] ?? []
        return r.filter { $0["to"] as? String == to }.compactMap {
            ($0["request"] as? String)?.components(separatedBy: "Body=").last?.components(separatedBy: "&").first?.replacingOccurrences(of: "+", with: " ")
                .removingPercentEncoding
        }.reversed()
    }
}
