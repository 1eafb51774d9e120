import App
import CRMSync
import FakeProviders
import Foundation
import GatewayCore
import HummingbirdTesting
import Outbound
import RedisClient
import Store
import XCTest

/// Erasure and export (PIPL / GDPR) on a real Redis, with the loopback providers and CRM: a person
/// with a WeChat follow, merged records, a campaign and a journey message, a receipt, an opt-out,
/// a merge candidate and a CRM record is erased, and no key or value holds any of their identifiers.
final class PrivacyTests: XCTestCase {
    static let openid = "o-erase-main-0001"
    static let phone = "+8613800000777"
    static let phone2 = "+8613800000778"
    static let email = "erase.me@example.org"
    static let nickname = "Erinna"

    /// Everything in Redis (every master of a cluster) as text, per key: the name, then every member,
    /// field, value or stream entry.
    static func dump(_ redis: RedisPool) async throws -> [String: String] {
        var out = [String: String]()
        for node in try await redis.onEachMaster([["PING"]]).map(\.endpoint) {
            out.merge(try await dump(redis, node: node)) { a, _ in a }
        }
        return out
    }

    private static func dump(_ redis: RedisPool, node: String) async throws -> [String: String] {
        var out = [String: String]()
        var cursor = "0"
        repeat {
            let r = try await redis.onNode(node, [["SCAN", cursor, "COUNT", "1000"]])[0].array ?? []
            cursor = r[0].string ?? "0"
            for key in r[1].strings {
                let type = try await redis.send("TYPE", key).string ?? ""
                let value: RedisValue
                switch type {
                case "string": value = try await redis.send("GET", key)
                case "hash": value = try await redis.send("HGETALL", key)
                case "set": value = try await redis.send("SMEMBERS", key)
                case "zset": value = try await redis.send("ZRANGE", key, "0", "-1")
                case "list": value = try await redis.send("LRANGE", key, "0", "-1")
                case "stream": value = try await redis.send("XRANGE", key, "-", "+")
                default: value = .null
                }
                out[key] = key + " " + flatten(value)
            }
        } while cursor != "0"
        return out
    }

    static func flatten(_ v: RedisValue) -> String {
        if let a = v.array { return a.map(flatten).joined(separator: " ") }
        return v.string ?? ""
    }

    static let journey = """
        {"name": "Welcome", "trigger": {"event": "web.signup"},
         "steps": [{"id": "hi", "send": {"channels": [{"channel": "sms", "text": "Welcome {{profile.nickname}}"}]}}]}
        """

    func test_erasure_leavesNoIdentifierAnywhere_keepsASuppression_andTellsTheCRM() async throws {
        let hubspot = HubSpotFake(token: "pat-na1-test")
        let server = try await CRMSyncTests.fake { hubspot.add(to: $0) }
        defer { Task { await server.stop() } }
        let rig = try await CampaignTests.makeRig { $0.outbound.publicURL = "https://gw.example.com" }
        let h = rig.h
        let spec = try CRMSyncTests.hubspotSpec(base: server.baseURL)
        h.crm = [spec]

        // The person: a follower with a phone and an email, and an older record with a second phone that
        // a later binding merges in. A bystander shares a tag and collides with them on an event.
        let main = try await rig.customer(Self.openid, phone: Self.phone, email: Self.email, tags: ["vip"], profile: ["nickname": Self.nickname])
        let other = try await rig.customer(nil, phone: Self.phone2, tags: ["webinar"])
        _ = try await rig.customers.bind(Identity(kind: .phone, value: Self.phone2), to: main, nowMs: h.now)
        let found = try await rig.customers.lookup(Identity(kind: .phone, value: Self.phone))
        let person = try XCTUnwrap(found)
        let bystander = try await rig.customer("o-bystander-0002", phone: "+8613800000999", tags: ["vip"], profile: ["nickname": "Bea"])
        _ = try await ScoreStore(redis: h.redis).apply(
            customer: person, interaction: "q-1", hits: [CRMSyncTests.qualifyRule], rules: CRMSyncTests.rules, nowMs: h.now)

        let worker = CRMSyncTests.worker(spec, h)
        let crm = Task { await worker.run() }
        let senders = try rig.runSenders(journeys: true)
        defer {
            crm.cancel()
            senders.cancel()
        }
        try await h.test { client in
            // A message (answered by an auto-reply that names the follower), a journey and a campaign.
            let xml = SampleCallbacks.text(to: "gh_demo", from: Self.openid, content: "hello, I am \(Self.nickname)", msgId: "900001", createTime: h.nowSeconds)
            let hook = try await client.callback(try h.builder("demo").post(xml: xml, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false))
            XCTAssertTrue(hook.text.contains(Self.openid), "the reply is addressed to the follower")
            let journey = try await client.send(.post, "/api/v1/journeys", json: Self.journey)
            let jid = try XCTUnwrap(journey.json["id"] as? String, journey.text)
            _ = try await client.send(.post, "/api/v1/journeys/\(jid)/activate", json: "{}")
            try await Task.sleep(for: .milliseconds(500))
            let event = try await client.send(
                .post, "/api/v1/events",
                json: #"{"events":[{"id":"evt-erase-1","type":"web.signup","identities":[{"type":"email","value":"\#(Self.email)"},{"type":"phone","value":"+8613800000999"}]}]}"#)
            XCTAssertEqual(event.status, .ok, event.text)
            let campaign = try await client.send(
                .post, "/api/v1/campaigns", json: CampaignTests.campaignJSON(audience: "vip", channels: #"[{"channel":"sms","text":"Hi {{profile.nickname}}, see you"}]"#))
            let cid = try XCTUnwrap(campaign.json["id"] as? String, campaign.text)
            _ = try await client.send(.post, "/api/v1/campaigns/\(cid)/start", json: "{}")
            _ = try await CampaignTests.waitForState(client, cid, "completed")
            try await CRMSyncTests.eventually("the journey's message") { rig.fakes.ledger.deliveries("twilio").filter { $0.to == Self.phone }.count == 2 }
            // A delivery receipt for the campaign message, then a STOP: the address opts out.
            let messages = try await h.redis.send("ZRANGE", Keys.customerMessages(person), "0", "-1").strings
            XCTAssertEqual(messages.count, 2, "the campaign's and the journey's message are indexed under the person")
            let providerId = try await h.redis.send("HGET", Keys.message(messages[0]), "providerId").string
            let sid = try XCTUnwrap(providerId)
            let receipt = try await ReceiptTests.twilioPost(client, ["MessageSid": sid, "MessageStatus": "delivered", "To": Self.phone], token: "fake-twilio-token")
            XCTAssertEqual(receipt.status, .ok, receipt.text)
            try await rig.customers.recordOptOut(channel: "sms", address: Self.phone, state: "opted_out", nowMs: h.now)
            try await CRMSyncTests.eventually("the CRM record") { hubspot.crm.records[person] != nil }
            let candidates = try await client.get("/api/v1/merge-candidates").json["pending"] as? Int
            XCTAssertEqual(candidates, 1, "the unverified phone of the bystander is a candidate, not a merge")

            // The export holds all of it.
            let export = try await client.get("/api/v1/customers/\(main)/export")
            XCTAssertEqual(export.status, .ok, export.text)
            XCTAssertEqual((export.json["records"] as? [[String: Any]])?.count, 2, "the person's record and the one merged into it")
            XCTAssertEqual((export.json["messages"] as? [[String: Any]])?.count, 2)
            XCTAssertEqual((export.json["journeys"] as? [[String: Any]])?.count, 1)
            XCTAssertEqual((export.json["sessions"] as? [[String: Any]])?.count, 1)
            XCTAssertEqual((export.json["crm"] as? [[String: Any]])?.count, 1)
            XCTAssertEqual((export.json["mergeCandidates"] as? [[String: Any]])?.count, 1)
            XCTAssertEqual((export.json["optOuts"] as? [[String: Any]])?.first?["address"] as? String, Self.phone)
            for needle in [Self.openid, Self.phone, Self.phone2, Self.email, Self.nickname] { XCTAssertTrue(export.text.contains(needle), needle) }

            // Erase, by the id that was merged away or the live one: the same person.
            let erased = try await client.send(.delete, "/api/v1/customers/\(other)", json: "")
            XCTAssertEqual(erased.status, .accepted, erased.text)
            XCTAssertEqual(erased.json["customer"] as? String, person)
            XCTAssertEqual(erased.json["suppressedAddresses"] as? Int, 2, "the person opted out of SMS: both phones")
            XCTAssertEqual(erased.json["crm"] as? [String], ["crm-hubspot"])
            let location = try XCTUnwrap(erased.headers[.location])
            let gone = try await client.get("/api/v1/customers/\(person)")
            XCTAssertEqual(gone.status, .notFound, "gone from every lookup at once")
            let byPhone = try await client.get("/api/v1/customers/lookup?phone=%2B\(Self.phone.dropFirst())")
            XCTAssertEqual(byPhone.status, .notFound)
            let purge = CustomerErasure(redis: h.redis, config: h.config, crmAdapters: ["crm-hubspot"], clock: h.clock)
            while try await purge.runPending() {}
            let job = try await client.get(location).json
            XCTAssertEqual(job["state"] as? String, "done")
            XCTAssertGreaterThan(job["streamEntriesRemoved"] as? Int ?? 0, 3, "\(job)")
            try await CRMSyncTests.eventually("the CRM's delete") { hubspot.crm.erased == [person] }
            XCTAssertNil(hubspot.crm.records[person])
            let again = try await client.send(.delete, "/api/v1/customers/\(person)", json: "")
            XCTAssertEqual(again.status, .notFound)

            // The bystander is untouched.
            let kept = try await client.get("/api/v1/customers/\(bystander)")
            XCTAssertEqual(kept.status, .ok)
            XCTAssertEqual(kept.json["tags"] as? [String], ["vip"])
        }
        crm.cancel()
        senders.cancel()
        try await Task.sleep(for: .milliseconds(200))

        // Nothing names the person: not a key, not a value, not a stream entry. Only the audit log and
        // the erasure's own record keep the internal id (who erased whom).
        let identifiers = [Self.openid, Self.phone, Self.phone2, Self.email, Self.nickname]
        let ids = Set([main, other, person])
        for (key, text) in try await Self.dump(h.redis) {
            for needle in identifiers { XCTAssertFalse(text.contains(needle), "\(key) holds \(needle): \(text.prefix(300))") }
            guard key != Keys.auditStream, !key.hasPrefix("erasure:{") else { continue }
            for id in ids { XCTAssertFalse(text.contains(id), "\(key) holds the customer id \(id): \(text.prefix(300))") }
        }
        // The opt-out survives as a keyed hash: a new record with that phone is not messaged.
        let suppression = AddressSuppression(h.config)
        for phone in [Self.phone, Self.phone2] {
            let kept = try await h.redis.send("GET", suppression.key(channel: "sms", address: phone)).string
            XCTAssertEqual(kept?.hasPrefix("opted_out|"), true, phone)
        }
        let email = try await h.redis.send("EXISTS", suppression.key(channel: "email", address: Self.email)).int
        XCTAssertEqual(email, 0, "no opt-out from email: nothing kept for it")
        let audit = try await AuditLog(redis: h.redis, retentionDays: 1).read(sinceMs: nil, after: nil, actor: nil, limit: 100)
        XCTAssertTrue(audit.entries.contains { $0.route == "/api/v1/customers/{id}" && $0.method == "DELETE" && $0.targets.contains(person) }, "\(audit.entries.map(\.route))")
        XCTAssertTrue(audit.entries.contains { $0.route == "/api/v1/customers/{id}/export" })
    }

    func test_erasure_isPassedToSalesforceAndTheSignedWebhook() async throws {
        let h = try Harness()
        let salesforce = SalesforceFake(token: "00Dxx!token")
        let receiver = CRMWebhookReceiver(secret: "whsec-test-0123456789")
        let server = try await CRMSyncTests.fake {
            salesforce.add(to: $0)
            receiver.add(to: $0)
        }
        defer { Task { await server.stop() } }
        let sfSpec = try CRMSyncTests.salesforceSpec(base: server.baseURL)
        let hookSpec = try CRMAdapterSpecParser.parse(
            yaml: try String(contentsOfFile: CRMSyncTests.root.appendingPathComponent("adapters/crm/crm-webhook.yaml").path, encoding: .utf8),
            file: "crm-webhook.yaml",
            environment: [
                "SCRM_CRM_WEBHOOK_URL": server.baseURL + "/crm-hook", "SCRM_CRM_WEBHOOK_SECRET": "whsec-test-0123456789", "SCRM_CRM_WEBHOOK_MAX_WAIT_MS": "0",
            ])
        let ids = try await CRMSyncTests.qualifiedCustomers(h, 3)
        let workers = [CRMSyncTests.worker(sfSpec, h), CRMSyncTests.worker(hookSpec, h)]
        let runs = workers.map { w in Task { await w.run() } }
        defer { runs.forEach { $0.cancel() } }
        try await CRMSyncTests.eventually("both CRMs hold the leads") {
            ids.allSatisfy { salesforce.crm.records[$0] != nil && receiver.crm.records[$0] != nil }
        }
        // Salesforce's record id is known for the first; for the second it is forgotten (deleted by our external id).
        _ = try await h.redis.send("HDEL", Keys.crmCustomer(adapter: "crm-salesforce", customer: ids[1]), "recordId")
        let erasure = CustomerErasure(redis: h.redis, config: h.config, crmAdapters: ["crm-salesforce", "crm-webhook"], clock: h.clock)
        for id in ids.prefix(2) {
            let job = try await erasure.erase(id, by: "test")
            XCTAssertEqual(job?.crm, ["crm-salesforce", "crm-webhook"])
        }
        try await CRMSyncTests.eventually("both CRMs told, and the answers recorded") {
            let waiting = try await h.redis.pipeline(["crm-salesforce", "crm-webhook"].map { ["ZCARD", Keys.crmErase(adapter: $0)] }).compactMap(\.int)
            return Set(salesforce.crm.erased) == Set(ids.prefix(2)) && Set(receiver.crm.erased) == Set(ids.prefix(2)) && waiting == [0, 0]
        }
        XCTAssertNotNil(salesforce.crm.records[ids[2]], "the others stay")
        XCTAssertNotNil(receiver.crm.records[ids[2]])
        for adapter in ["crm-salesforce", "crm-webhook"] {
            let erased = try await h.redis.send("HGET", Keys.crmStatus(adapter: adapter), "erased").string
            XCTAssertEqual(erased, "2", adapter)
        }
    }

    func test_erasingAQueuedRecipient_letsTheCampaignComplete() async throws {
        let rig = try await CampaignTests.makeRig()
        let keep = try await rig.customer(nil, phone: "+8613800000881", tags: ["vip"], profile: ["nickname": "Kay"])
        let gone = try await rig.customer(nil, phone: "+8613800000882", tags: ["vip"], profile: ["nickname": "Gil"])
        try await rig.h.test { client in
            let created = try await client.send(
                .post, "/api/v1/campaigns", json: CampaignTests.campaignJSON(audience: "vip", channels: #"[{"channel":"sms","text":"Hi {{profile.nickname}}"}]"#))
            let id = try XCTUnwrap(created.json["id"] as? String, created.text)
            _ = try await client.send(.post, "/api/v1/campaigns/\(id)/start", json: "{}")
            // Planned, not sent: both messages wait in the queue.
            let planner = try rig.runPlannerOnly()
            try await CRMSyncTests.eventually("the plan") { try await client.get("/api/v1/campaigns/\(id)").json["progress"].flatMap { ($0 as? [String: Any])?["queued"] as? Int } == 2 }
            planner.cancel()
            let erased = try await client.send(.delete, "/api/v1/customers/\(gone)", json: "")
            XCTAssertEqual(erased.status, .accepted, erased.text)
            let senders = try rig.runSenders()
            defer { senders.cancel() }
            let done = try await CampaignTests.waitForState(client, id, "completed")
            let progress = try XCTUnwrap(done["progress"] as? [String: Any])
            XCTAssertEqual(progress["sent"] as? Int, 1)
            XCTAssertEqual(progress["skipped"] as? Int, 1, "the erased recipient's message")
            XCTAssertEqual(progress["open"] as? Int, 0)
            let report = try await client.get("/api/v1/campaigns/\(id)/report").json
            XCTAssertEqual(report["skipped"] as? [String: Int], ["erased": 1])
        }
        XCTAssertEqual(rig.fakes.ledger.deliveries("twilio").map(\.to), ["+8613800000881"], "only the kept customer is messaged")
        _ = keep
    }

    func test_anErasureLeftHalfWay_isCompletedByTheBackgroundRun() async throws {
        let rig = try await CampaignTests.makeRig()
        let h = rig.h
        let id = try await rig.customer("o-halfway-0001", phone: "+8613800000991", tags: ["vip"], profile: ["nickname": "Hal"])
        // The request wrote its job and stopped before erasing anything (a process killed then).
        let job = ULID.make(milliseconds: h.now)
        _ = try await h.redis.pipelineChecked([
            ["HSET", Keys.erasure(job), "customer", id, "state", "erasing", "requestedBy", "test", "requestedAt", String(h.now)],
            ["ZADD", Keys.activeErasures, String(h.now), job],
        ])
        let erasure = CustomerErasure(redis: h.redis, config: h.config, crmAdapters: [], clock: h.clock)
        let worked = try await erasure.runPending()
        XCTAssertTrue(worked)
        let done = try await erasure.job(job)
        XCTAssertEqual(done?.state, "done")
        XCTAssertGreaterThan(done?.keysDeleted ?? 0, 3)
        let lookup = try await rig.customers.lookup(Identity(kind: .phone, value: "+8613800000991"))
        XCTAssertNil(lookup)
        let tagged = try await h.redis.send("SISMEMBER", Keys.tag("vip"), id).int
        XCTAssertEqual(tagged, 0)
        let active = try await h.redis.send("ZCARD", Keys.activeErasures).int
        XCTAssertEqual(active, 0)
        let again = try await erasure.runPending()
        XCTAssertFalse(again, "nothing left to do")
    }
}
