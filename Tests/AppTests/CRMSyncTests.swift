import App
import CRMSync
import FakeProviders
import Foundation
import GatewayCore
import HTTPTransport
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Logging
import RedisClient
import Store
import XCTest

/// Qualified leads synced to loopback CRMs that enforce the real request shapes, batch limits and
/// rate budgets, on a real redis-server.
final class CRMSyncTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let qualifyRule = ScoringRules.Rule(id: "demo", on: "message.text", condition: nil, points: 20, maxPerDay: nil, tags: [], qualify: true)
    static let rules = ScoringRules(rules: [qualifyRule], stages: [.init(name: "engaged", minScore: 10), .init(name: "MQL", minScore: 50)])

    static func hubspotSpec(base: String, requests: Int = 100, windowMs: Int = 10_000, batch: Int = 100, maxWaitMs: Int = 200) throws -> CRMAdapterSpec {
        try CRMAdapterSpecParser.parse(
            yaml: """
                name: crm-hubspot
                style: hubspot
                settings: { base_url: "\(base)", token: env:HUBSPOT_TOKEN, webhook_secret: env:HUBSPOT_CLIENT_SECRET }
                id_property: scrm_id
                batch: { size: \(batch), max_wait_ms: \(maxWaitMs) }
                budget: { requests: \(requests), window_ms: \(windowMs) }
                fields: { scrm_id: id, email: profile.contact, firstname: profile.nickname, scrm_score: score, scrm_stage: stage, scrm_tags: tags }
                inbound:
                  stage: lifecyclestage
                  owner: hubspot_owner_id
                  tags: scrm_tags
                  stages: { salesqualifiedlead: SQL }
                """, file: "crm-hubspot.yaml", environment: ["HUBSPOT_TOKEN": "pat-na1-test", "HUBSPOT_CLIENT_SECRET": "hubspot-app-secret"])
    }

    static func worker(_ spec: CRMAdapterSpec, _ h: Harness, concurrency: Int = 2, retryBaseMs: Int64 = 50) -> CRMSyncWorker {
        var s = h.config.crm
        s.concurrency = concurrency
        s.retryBaseMs = retryBaseMs
        s.retryCapMs = 200
        s.maxAttempts = 4
        s.leaseSeconds = 5
        return CRMSyncWorker(spec: spec, redis: h.redis, transport: .shared, settings: s, logger: Logger(label: "crm-test"), clock: systemClock)
    }

    /// Imports `n` customers (profile.contact an email, or not one for the indexes in `badEmail`) and qualifies them.
    static func qualifiedCustomers(_ h: Harness, _ n: Int, badEmail: Set<Int> = [], nickname: (Int) -> String? = { "Lead \($0)" }) async throws -> [String] {
        let store = CustomerStore(redis: h.redis, config: h.config)
        let rows = (0..<n).map { i in
            var profile = ["contact": badEmail.contains(i) ? "lead\(i)-at-example" : "lead\(i)@example.com"]
            profile["nickname"] = nickname(i)
            return CustomerStore.ImportRow(identities: [Identity(kind: .unionid, value: "u\(i)")], profile: profile)
        }
        _ = try await store.importBatch(rows, nowMs: h.now)
        var ids = [String]()
        for i in 0..<n { ids.append(try await store.lookup(Identity(kind: .unionid, value: "u\(i)"))!) }
        let scores = ScoreStore(redis: h.redis)
        for (i, id) in ids.enumerated() {
            _ = try await scores.apply(customer: id, interaction: "q-\(i)", hits: [qualifyRule], rules: rules, nowMs: h.now)
        }
        return ids
    }

    static func eventually(_ what: String, timeout: Duration = .seconds(30), _ check: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await check() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTFail("timed out waiting for \(what)")
    }

    static func fake(_ add: (Router<BasicRequestContext>) -> Void) async throws -> FakeServer {
        let router = Router()
        add(router)
        return try await FakeServer.start(router)
    }

    // MARK: qualification

    func test_onlyQualifiedCustomersAreQueued_andTheirLaterChangesToo() async throws {
        let h = try Harness()
        let store = CustomerStore(redis: h.redis, config: h.config)
        _ = try await store.importBatch([.init(identities: [Identity(kind: .unionid, value: "cold")]), .init(identities: [Identity(kind: .unionid, value: "warm")])], nowMs: h.now)
        let cold = try await store.lookup(Identity(kind: .unionid, value: "cold"))!
        let warm = try await store.lookup(Identity(kind: .unionid, value: "warm"))!
        let scores = ScoreStore(redis: h.redis)
        let engage = ScoringRules.Rule(id: "click", on: "event.CLICK", condition: nil, points: 30, maxPerDay: nil, tags: [], qualify: false)
        var rules = Self.rules
        rules.qualifyStage = "MQL"
        _ = try await scores.apply(customer: cold, interaction: "1-1", hits: [engage], rules: rules, nowMs: h.now)
        _ = try await TagStore(redis: h.redis).apply("vip", add: true, customerIds: [cold])
        var queued = try await h.redis.send("XLEN", Keys.crmStream).int
        XCTAssertEqual(queued, 0, "30 points (engaged) is not qualified: nothing for the CRM")
        _ = try await scores.apply(customer: warm, interaction: "1-2", hits: [engage], rules: rules, nowMs: h.now)
        _ = try await scores.apply(customer: warm, interaction: "1-3", hits: [engage], rules: rules, nowMs: h.now)
        let hash = try await h.redis.send("HGETALL", Keys.customer(warm)).dictionary
        XCTAssertEqual(hash["stage"], "MQL")
        XCTAssertNotNil(hash["qualifiedAt"], "crossing MQL qualifies")
        queued = try await h.redis.send("XLEN", Keys.crmStream).int
        XCTAssertEqual(queued, 1)
        _ = try await TagStore(redis: h.redis).apply("vip", add: true, customerIds: [warm, cold])
        try await scores.touch(customer: warm)
        let entries = try await h.redis.send("XRANGE", Keys.crmStream, "-", "+").array ?? []
        XCTAssertEqual(entries.compactMap { $0.array?.last?.dictionary["customer"] }, [warm, warm, warm], "a tag and an unscored interaction of the qualified lead; none for the cold one")
    }

    /// Index upkeep changes no customer, so it resyncs no lead: a reindex at start (a new index
    /// version) would otherwise queue every qualified lead again after each restart that cut it short.
    /// An interaction scored again (its entry redelivered after a crash) touches its lead again on a
    /// cluster, where the first try only returned its touch to a caller that may have stopped before
    /// appending it; on a single Redis the first try appended it in the same call.
    func test_reindexResyncsNoLead_andARedeliveredInteractionTouchesAgainOnACluster() async throws {
        let h = try Harness()
        let ids = try await Self.qualifiedCustomers(h, 3)
        let touched = try await h.redis.send("XLEN", Keys.crmStream).int ?? 0
        XCTAssertEqual(touched, 3, "one touch per lead qualified")
        _ = try await h.redis.send("DEL", Keys.fieldIndexVersion)
        let reindexed = try await CustomerStore(redis: h.redis, config: h.config).prepareIndexes()
        XCTAssertGreaterThanOrEqual(reindexed, 3)
        var now = try await h.redis.send("XLEN", Keys.crmStream).int
        XCTAssertEqual(now, touched, "a reindex touches no lead")
        let again = try await ScoreStore(redis: h.redis).apply(customer: ids[0], interaction: "q-0", hits: [Self.qualifyRule], rules: Self.rules, nowMs: h.now)
        XCTAssertEqual(again, .duplicate)
        now = try await h.redis.send("XLEN", Keys.crmStream).int
        XCTAssertEqual(now, touched + (h.redis.isCluster ? 1 : 0), "a redelivered interaction touches its lead again only where its touch could have been lost")
    }

    // MARK: HubSpot

    func test_hubspot_batches_recordIdsStoredBack_perRecordFailuresDeadLettered_updatesCoalesced() async throws {
        let h = try Harness()
        let hubspot = HubSpotFake(token: "pat-na1-test")
        let server = try await Self.fake { hubspot.add(to: $0) }
        defer { Task { await server.stop() } }
        let spec = try Self.hubspotSpec(base: server.baseURL)
        h.crm = [spec]
        let ids = try await Self.qualifiedCustomers(h, 250, badEmail: [7, 77, 177])
        // On a single Redis, MONITOR shows every key; a cluster refuses a function's undeclared key itself.
        let monitor = try h.server.map { try RedisMonitor(port: $0.port) }
        let worker = Self.worker(spec, h)
        let run = Task { await worker.run() }
        defer { run.cancel() }
        // Done when HubSpot has the records and the gateway has stored every record id back (the fake
        // holds a record before the gateway has read its answer).
        try await Self.eventually("247 records stored back and 3 dead letters") {
            let dlq = try await h.redis.send("XLEN", Keys.crmDeadLetters).int ?? 0
            let records = hubspot.crm.records.values.map(\.recordId)
            guard records.count == 247, dlq == 3 else { return false }
            let stored = try await h.redis.pipeline(records.map { ["EXISTS", "idx:crm:crm-hubspot:\($0)"] })
            return stored.allSatisfy { $0.int == 1 }
        }
        XCTAssertLessThanOrEqual(hubspot.crm.largestBatch, 100)
        XCTAssertLessThanOrEqual(hubspot.crm.calls, 6, "250 customers in batches of up to 100")
        XCTAssertEqual(hubspot.crm.throttled, 0)
        XCTAssertTrue(hubspot.crm.records.values.allSatisfy { $0.writes == 1 }, "each customer written once")
        let dead = try await h.redis.send("XRANGE", Keys.crmDeadLetters, "-", "+").array ?? []
        XCTAssertEqual(Set(dead.compactMap { $0.array?.last?.dictionary["customer"] }), [ids[7], ids[77], ids[177]])
        XCTAssertTrue(dead.allSatisfy { $0.array?.last?.dictionary["reason"] == "VALIDATION_ERROR" })

        // The record id came back as a crm identity; the API shows the sync.
        let record = try XCTUnwrap(hubspot.crm.records[ids[0]])
        XCTAssertEqual(record.properties["email"], "lead0@example.com")
        XCTAssertEqual(record.properties["scrm_stage"], "engaged")
        XCTAssertEqual(record.properties["scrm_score"], "20")
        let owner = try await h.redis.send("GET", "idx:crm:crm-hubspot:\(record.recordId)").string
        XCTAssertEqual(owner, ids[0])
        try await h.test { client in
            let status = try await client.get("/api/v1/customers/\(ids[0])/crm").json
            let first = try XCTUnwrap((status["crm"] as? [[String: Any]])?.first)
            XCTAssertEqual(first["state"] as? String, "synced")
            XCTAssertEqual(first["recordId"] as? String, record.recordId)
            let failed = try await client.get("/api/v1/customers/\(ids[7])/crm").json
            XCTAssertEqual(((failed["crm"] as? [[String: Any]])?.first?["lastError"] as? String)?.hasPrefix("VALIDATION_ERROR"), true)
            let all = try await client.get("/api/v1/crm").json
            let a = try XCTUnwrap((all["adapters"] as? [[String: Any]])?.first)
            XCTAssertEqual(a["synced"] as? Int, 247)
            XCTAssertEqual(a["deadLettered"] as? Int, 3)
            XCTAssertEqual((a["queue"] as? [String: Any])?["inFlight"] as? Int, 0)
            XCTAssertNotNil(a["lastError"] as? String)
            XCTAssertGreaterThanOrEqual((a["budget"] as? [String: Any])?["used"] as? Int ?? 0, 3, "calls counted in the rolling window")

            // The addresses are fixed; replaying the dead letters syncs those three, and clears them.
            for i in [7, 77, 177] { _ = try await h.redis.send("HSET", Keys.customer(ids[i]), "profile.contact", "fixed\(i)@example.com") }
            let replay = try await client.send(.post, "/api/v1/crm/crm-hubspot/dead-letters/replay", json: "{}")
            XCTAssertEqual(replay.status, .accepted)
            XCTAssertEqual(replay.json["replayed"] as? Int, 3)
            try await Self.eventually("the replayed records") { hubspot.crm.records.count == 250 }
            XCTAssertEqual(hubspot.crm.records[ids[77]]?.properties["email"], "fixed77@example.com")
            let left = try await h.redis.send("XLEN", Keys.crmDeadLetters).int
            XCTAssertEqual(left, 0)
            let unknown = try await client.send(.post, "/api/v1/crm/crm-nobody/resync", json: #"{"customers":["x"]}"#)
            XCTAssertEqual(unknown.status, .notFound)
            let resync = try await client.send(.post, "/api/v1/crm/crm-hubspot/resync", json: "{\"customers\":[\"\(ids[2])\"]}")
            XCTAssertEqual(resync.status, .accepted)
            try await Self.eventually("the resync") { hubspot.crm.records[ids[2]]?.writes == 2 }
        }
        // The outbox functions touch only the keys they were given (crm_take picks its customers, so
        // it names their keys itself: see Lua/crm.lua).
        if let monitor {
            let seen = try await RedisMonitor.undeclaredKeys(try monitor.stop(), functions: ["crm_feed", "crm_enqueue", "crm_finish"], redis: h.redis)
            XCTAssertGreaterThan(seen.calls, 5)
            XCTAssertEqual(seen.undeclared, [])
        }

        // Five tag changes in a row reach HubSpot as fewer writes, ending with all five tags.
        for t in ["t1", "t2", "t3", "t4", "t5"] { _ = try await TagStore(redis: h.redis).apply(t, add: true, customerIds: [ids[1]]) }
        try await Self.eventually("the tags in HubSpot") { hubspot.crm.records[ids[1]]?.properties["scrm_tags"] == "t1;t2;t3;t4;t5" }
        let writes = hubspot.crm.records[ids[1]]?.writes ?? 0
        XCTAssertLessThan(writes, 6, "five changes coalesced (\(writes - 1) update writes)")
        XCTAssertEqual(hubspot.crm.records.count, 250, "updates do not create records")
    }

    func test_hubspot_429_pausesAndNothingIsLost_andAMatchingBudgetCausesNone() async throws {
        let h = try Harness()
        // HubSpot allows 3 calls per second; we are configured (wrongly) for 20: 12 batches of 5.
        let hubspot = HubSpotFake(token: "pat-na1-test", limit: 3, windowMs: 1000)
        let server = try await Self.fake { hubspot.add(to: $0) }
        defer { Task { await server.stop() } }
        let ids = try await Self.qualifiedCustomers(h, 60)
        let worker = Self.worker(try Self.hubspotSpec(base: server.baseURL, requests: 20, windowMs: 1000, batch: 5, maxWaitMs: 50), h)
        let run = Task { await worker.run() }
        try await Self.eventually("60 records after throttling") { hubspot.crm.records.count == 60 }
        run.cancel()
        XCTAssertGreaterThan(hubspot.crm.throttled, 0, "the fake did throttle")
        XCTAssertTrue(hubspot.crm.records.values.allSatisfy { $0.writes == 1 })
        let dlq = try await h.redis.send("XLEN", Keys.crmDeadLetters).int
        XCTAssertEqual(dlq, 0, "throttled batches are held, not failed")
        let status = try await CRMOutbox(redis: h.redis, adapter: "crm-hubspot").status()
        XCTAssertEqual(status.fields["throttled"], String(hubspot.crm.throttled))

        // The same load with the budget HubSpot really has: no 429 at all.
        let h2 = try Harness()
        let hubspot2 = HubSpotFake(token: "pat-na1-test", limit: 3, windowMs: 1000)
        let server2 = try await Self.fake { hubspot2.add(to: $0) }
        defer { Task { await server2.stop() } }
        _ = try await Self.qualifiedCustomers(h2, 60)
        let worker2 = Self.worker(try Self.hubspotSpec(base: server2.baseURL, requests: 3, windowMs: 1000, batch: 10, maxWaitMs: 50), h2)
        let run2 = Task { await worker2.run() }
        defer { run2.cancel() }
        try await Self.eventually("60 records within budget") { hubspot2.crm.records.count == 60 }
        XCTAssertEqual(hubspot2.crm.throttled, 0)
        XCTAssertEqual(hubspot2.crm.calls, 6)
        _ = ids
    }

    func test_retriesAndACrashAfterSending_leaveExactlyOneRecordPerCustomer() async throws {
        let h = try Harness()
        let hubspot = HubSpotFake(token: "pat-na1-test")
        let server = try await Self.fake { hubspot.add(to: $0) }
        defer { Task { await server.stop() } }
        let spec = try Self.hubspotSpec(base: server.baseURL, batch: 20, maxWaitMs: 50)
        let ids = try await Self.qualifiedCustomers(h, 40)
        // A process takes a batch, sends it, and dies before recording the answer.
        let outbox = CRMOutbox(redis: h.redis, adapter: spec.name)
        try await outbox.prepare()
        _ = try await outbox.feed(consumer: "dead-process", maxWaitMs: 0)
        guard case .batch(let token, let snapshots) = try await outbox.take(size: 20, leaseMs: 1000, recent: 5, token: "lost") else {
            return XCTFail("no batch")
        }
        let response = try await HTTPTransport.shared.send(CRMWire(spec: spec).request(snapshots.map(CRMRecord.init), token: token, nowMs: h.now))
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(hubspot.crm.records.count, 20)
        // HubSpot then fails twice (502), and the next process syncs everything.
        hubspot.ledger.inject("hubspot.upsert", FakeAnswer(status: 502, json: "{}"), FakeAnswer(status: 502, json: "{}"))
        let worker = Self.worker(spec, h)
        let run = Task { await worker.run() }
        defer { run.cancel() }
        try await Self.eventually("every customer synced") {
            var synced = 0
            for id in ids where try await outbox.customerStatus(id).fields["syncedAt"] != nil { synced += 1 }
            return synced == 40
        }
        XCTAssertEqual(hubspot.crm.records.count, 40, "exactly one record per customer")
        XCTAssertEqual(Set(hubspot.crm.records.keys), Set(ids))
        let rewritten = hubspot.crm.records.values.filter { $0.writes == 2 }.count
        XCTAssertEqual(rewritten, 20, "the lost batch was sent again after its lease, as updates")
        let dlq = try await h.redis.send("XLEN", Keys.crmDeadLetters).int
        XCTAssertEqual(dlq, 0)
    }

    // MARK: ordering

    func test_perCustomerOrdering_underConcurrentChangesAndTwoProcesses() async throws {
        let h = try Harness()
        let receiver = CRMWebhookReceiver(secret: "whsec-test-0123456789", jitterMs: 40)
        let server = try await Self.fake { receiver.add(to: $0) }
        defer { Task { await server.stop() } }
        let spec = try CRMAdapterSpecParser.parse(
            yaml: try String(contentsOfFile: Self.root.appendingPathComponent("adapters/crm/crm-webhook.yaml").path, encoding: .utf8), file: "crm-webhook.yaml",
            environment: [
                "SCRM_CRM_WEBHOOK_URL": server.baseURL + "/crm-hook", "SCRM_CRM_WEBHOOK_SECRET": "whsec-test-0123456789", "SCRM_CRM_WEBHOOK_BATCH": "5",
                "SCRM_CRM_WEBHOOK_MAX_WAIT_MS": "0", "SCRM_CRM_WEBHOOK_BUDGET_REQUESTS": "1000",
            ])
        let ids = try await Self.qualifiedCustomers(h, 12)
        // Two "processes", three senders each.
        let first = Self.worker(spec, h, concurrency: 3)
        let second = Self.worker(spec, h, concurrency: 3)
        let run1 = Task { await first.run() }
        let run2 = Task { await second.run() }
        defer {
            run1.cancel()
            run2.cancel()
        }
        let scores = ScoreStore(redis: h.redis)
        let click = ScoringRules.Rule(id: "click", on: "event.CLICK", condition: nil, points: 1, maxPerDay: nil, tags: [], qualify: false)
        for round in 1...25 {
            for id in ids {
                _ = try await scores.apply(customer: id, interaction: "r\(round)-\(id)", hits: [click], rules: Self.rules, nowMs: h.now)
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        try await Self.eventually("the final scores in the CRM") {
            ids.allSatisfy { receiver.crm.records[$0]?.properties["score"] == "45" }
        }
        XCTAssertEqual(receiver.crm.outOfOrder, 0, "no snapshot older than one already delivered")
        for id in ids {
            let seqs = receiver.crm.history(id).compactMap { $0["seq"].flatMap(Int.init) }
            XCTAssertEqual(seqs, seqs.sorted(), "deliveries of \(id) in snapshot order")
            let scoresSeen = receiver.crm.history(id).compactMap { $0["score"].flatMap(Int.init) }
            XCTAssertEqual(scoresSeen, scoresSeen.sorted(), "a score that only rises is never seen going down")
        }
        XCTAssertLessThan(receiver.crm.records.values.map(\.writes).reduce(0, +), 12 * 26, "changes coalesced")
    }

    // MARK: Salesforce

    func test_salesforce_perRecordErrors_andRequestLimitIsThrottling() async throws {
        let h = try Harness()
        let salesforce = SalesforceFake(token: "00Dxx!token")
        let server = try await Self.fake { salesforce.add(to: $0) }
        defer { Task { await server.stop() } }
        // The shipped spec without its LastName fallback: customers without a nickname have no
        // LastName, and Salesforce refuses those records alone.
        let spec = try Self.salesforceSpec(base: server.baseURL, lastName: "profile.nickname")
        let ids = try await Self.qualifiedCustomers(h, 30, nickname: { $0 % 10 == 3 ? nil : "Lead \($0)" })
        salesforce.ledger.inject("salesforce.upsert", FakeAnswer(status: 403, json: #"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#))
        let worker = Self.worker(spec, h)
        let run = Task { await worker.run() }
        defer { run.cancel() }
        try await Self.eventually("the limit answer seen") { try await h.redis.send("EXISTS", Keys.crmPause(adapter: spec.name)).int == 1 }
        let pauseUs = try await h.redis.send("PTTL", Keys.crmPause(adapter: spec.name)).int ?? 0
        XCTAssertGreaterThan(pauseUs, 3_000_000, "REQUEST_LIMIT_EXCEEDED pauses the adapter (an hour), it fails nothing")
        let dlqBefore = try await h.redis.send("XLEN", Keys.crmDeadLetters).int
        XCTAssertEqual(dlqBefore, 0)
        _ = try await h.redis.send("DEL", Keys.crmPause(adapter: spec.name))  // the allowance is back
        try await Self.eventually("27 leads and 3 refused") {
            let dlq = try await h.redis.send("XLEN", Keys.crmDeadLetters).int ?? 0
            return salesforce.crm.records.count == 27 && dlq == 3
        }
        let lead = try XCTUnwrap(salesforce.crm.records[ids[0]])
        XCTAssertEqual(lead.properties["LastName"], "Lead 0")
        XCTAssertEqual(lead.properties["Company"], "Unknown")
        let stored = try await h.redis.send("GET", "idx:crm:crm-salesforce:00Q000000000\(lead.recordId)").string
        XCTAssertEqual(stored, ids[0], "the Lead id is the customer's crm identity")
        let dead = try await h.redis.send("XRANGE", Keys.crmDeadLetters, "-", "+").array ?? []
        XCTAssertTrue(dead.allSatisfy { $0.array?.last?.dictionary["reason"] == "REQUIRED_FIELD_MISSING" })
        XCTAssertLessThanOrEqual(salesforce.crm.largestBatch, 200)
    }

    static func salesforceSpec(base: String, lastName: String? = nil) throws -> CRMAdapterSpec {
        var yaml = try String(contentsOfFile: Self.root.appendingPathComponent("adapters/crm/crm-salesforce.yaml").path, encoding: .utf8)
        let shipped = "  LastName: profile.name || profile.nickname || =WeChat follower\n"
        XCTAssertTrue(yaml.contains(shipped))
        if let lastName { yaml = yaml.replacingOccurrences(of: shipped, with: "  LastName: \(lastName)\n") }
        return try CRMAdapterSpecParser.parse(
            yaml: yaml, file: "crm-salesforce.yaml",
            environment: ["SCRM_SALESFORCE_INSTANCE_URL": base, "SALESFORCE_TOKEN": "00Dxx!token", "SCRM_SALESFORCE_MAX_WAIT_MS": "50"])
    }

    func test_salesforce_shippedSpec_givesLeadsWithoutANameALastName() async throws {
        let h = try Harness()
        let salesforce = SalesforceFake(token: "00Dxx!token")
        let server = try await Self.fake { salesforce.add(to: $0) }
        defer { Task { await server.stop() } }
        let ids = try await Self.qualifiedCustomers(h, 4, nickname: { $0 % 2 == 0 ? nil : "Lead \($0)" })
        let worker = Self.worker(try Self.salesforceSpec(base: server.baseURL), h)
        let run = Task { await worker.run() }
        defer { run.cancel() }
        try await Self.eventually("4 leads") { salesforce.crm.records.count == 4 }
        XCTAssertEqual(salesforce.crm.records[ids[0]]?.properties["LastName"], "WeChat follower", "a WeChat lead with no name is still accepted")
        XCTAssertEqual(salesforce.crm.records[ids[1]]?.properties["LastName"], "Lead 1")
        let dlq = try await h.redis.send("XLEN", Keys.crmDeadLetters).int
        XCTAssertEqual(dlq, 0)
    }

    // MARK: inbound

    func test_inboundHubSpotWebhook_updatesStageOwnerTags_withoutEcho() async throws {
        let h = try Harness()
        let hubspot = HubSpotFake(token: "pat-na1-test")
        let server = try await Self.fake { hubspot.add(to: $0) }
        defer { Task { await server.stop() } }
        let spec = try Self.hubspotSpec(base: server.baseURL, maxWaitMs: 50)
        h.crm = [spec]
        let ids = try await Self.qualifiedCustomers(h, 3)
        let worker = Self.worker(spec, h)
        let run = Task { await worker.run() }
        defer { run.cancel() }
        try await Self.eventually("3 records") { hubspot.crm.records.count == 3 }
        try await Self.eventually("record ids stored") { try await h.redis.send("EXISTS", "idx:crm:crm-hubspot:901").int == 1 }
        let record = try XCTUnwrap(hubspot.crm.records[ids[0]]?.recordId)
        let callsBefore = hubspot.crm.calls
        let streamBefore = try await h.redis.send("XLEN", Keys.crmStream).int

        try await h.test { client in
            let body = """
                [{"eventId":1,"subscriptionId":7,"portalId":62515,"appId":1160452,"occurredAt":\(h.now),"subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":\(record),"propertyName":"lifecyclestage","propertyValue":"salesqualifiedlead","changeSource":"CRM_UI"},
                 {"eventId":2,"subscriptionId":8,"portalId":62515,"appId":1160452,"occurredAt":\(h.now),"subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":\(record),"propertyName":"hubspot_owner_id","propertyValue":"4711","changeSource":"CRM_UI"},
                 {"eventId":3,"subscriptionId":9,"portalId":62515,"appId":1160452,"occurredAt":\(h.now),"subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":\(record),"propertyName":"scrm_tags","propertyValue":"sales:hot;event:visited","changeSource":"CRM_UI"},
                 {"eventId":4,"subscriptionId":9,"portalId":62515,"appId":1160452,"occurredAt":\(h.now),"subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":424242,"propertyName":"lifecyclestage","propertyValue":"salesqualifiedlead","changeSource":"CRM_UI"}]
                """
            let url = h.config.outbound.publicURL + "/webhooks/crm/crm-hubspot"
            func post(_ body: String, timestamp: Int64, secret: String = "hubspot-app-secret") async throws -> HummingbirdTesting.TestResponse {
                let ts = String(timestamp)
                let sig = CRMSignature.hubSpotV3(secret: secret, method: "POST", uri: url, body: Array(body.utf8), timestamp: ts)
                return try await client.execute(
                    uri: "/webhooks/crm/crm-hubspot", method: .post,
                    headers: [.contentType: "application/json", HTTPField.Name("X-HubSpot-Signature-v3")!: sig, HTTPField.Name("X-HubSpot-Request-Timestamp")!: ts],
                    body: ByteBuffer(string: body))
            }
            let forged = try await post(body, timestamp: h.now, secret: "not-the-secret")
            XCTAssertEqual(forged.status, .forbidden)
            let stale = try await post(body, timestamp: h.now - 600_000)
            XCTAssertEqual(stale.status, .forbidden, "a replay older than the window")
            let unchanged = try await h.redis.send("HGET", Keys.customer(ids[0]), "stage").string
            XCTAssertEqual(unchanged, "engaged", "refused webhooks change nothing")

            let ok = try await post(body, timestamp: h.now)
            XCTAssertEqual(ok.status, .ok)
            XCTAssertEqual(ok.json["applied"] as? Int, 3)
            XCTAssertEqual(ok.json["unknown"] as? Int, 1, "a record we never synced")
            let replayed = try await post(body, timestamp: h.now)
            XCTAssertEqual(replayed.status, .forbidden, "the same signed request inside the window")
            XCTAssertEqual(replayed.errorCode, "replayed")
        }
        let hash = try await h.redis.send("HGETALL", Keys.customer(ids[0])).dictionary
        XCTAssertEqual(hash["stage"], "SQL")
        XCTAssertEqual(hash["owner"], "4711")
        let tags = try await h.redis.send("SMEMBERS", Keys.customerTags(ids[0])).strings.sorted()
        XCTAssertEqual(tags, ["event:visited", "sales:hot"])
        let sql = try await h.redis.send("SISMEMBER", h.shard(ids[0]).key(single: Keys.fieldIndex("stage:SQL")), ids[0]).int
        XCTAssertEqual(sql, 1, "audiences see the CRM's stage")
        // No echo: nothing queued for the CRM, and no call made after waiting well past max_wait.
        let streamAfter = try await h.redis.send("XLEN", Keys.crmStream).int
        XCTAssertEqual(streamAfter, streamBefore)
        try await Task.sleep(for: .milliseconds(600))
        XCTAssertEqual(hubspot.crm.calls, callsBefore)
        // The next real change syncs the customer with the CRM's stage, once.
        _ = try await TagStore(redis: h.redis).apply("vip", add: true, customerIds: [ids[0]])
        try await Self.eventually("the update") { hubspot.crm.records[ids[0]]?.properties["scrm_tags"] == "event:visited;sales:hot;vip" }
        XCTAssertEqual(hubspot.crm.records[ids[0]]?.properties["scrm_stage"], "SQL")
    }

    /// A cluster's take releases leased customers it will not sync: one merged away queues its survivor,
    /// one gone (erased after a touch was queued) has its CRM state deleted, so no key names it.
    func test_release_queuesTheSurvivor_andDeletesAGoneCustomersState() async throws {
        let h = try Harness()
        let a = "crm-hubspot"
        let merged = "01M3250V00AAAAAAAAAAAAAAAA", gone = "01M3250V00BBBBBBBBBBBBBBBB", survivor = "01M3250V00CCCCCCCCCCCCCCCC"
        _ = try await h.redis.pipelineChecked([
            ["HSET", Keys.crmCustomer(adapter: a, customer: merged), "lease", "tok", "seq", "3"],
            ["HSET", Keys.crmCustomer(adapter: a, customer: gone), "lease", "tok", "seq", "1"],
            ["ZADD", Keys.crmInFlight(adapter: a), "1", merged, "1", gone],
        ])
        _ = try await h.redis.fcall(
            StoreFunctions.library, "crm_release",
            keys: [Keys.crmDirty(adapter: a), Keys.crmInFlight(adapter: a), Keys.crmCustomer(adapter: a, customer: merged), Keys.crmCustomer(adapter: a, customer: gone)],
            args: ["tok", String(h.now), merged, survivor, gone, ""])
        let goneState = try await h.redis.send("EXISTS", Keys.crmCustomer(adapter: a, customer: gone)).int
        XCTAssertEqual(goneState, 0, "a gone customer's CRM state is deleted")
        let mergedState = try await h.redis.send("HGETALL", Keys.crmCustomer(adapter: a, customer: merged)).dictionary
        XCTAssertEqual(mergedState, ["seq": "3"], "a merged customer's state loses only its lease")
        let dirty = try await h.redis.send("ZRANGE", Keys.crmDirty(adapter: a), "0", "-1").strings
        XCTAssertEqual(dirty, [survivor])
        let inFlight = try await h.redis.send("ZCARD", Keys.crmInFlight(adapter: a)).int
        XCTAssertEqual(inFlight, 0)
    }

    func test_shippedSpecsLoad_andBadSpecsNameTheirKey() throws {
        let env = [
            "HUBSPOT_TOKEN": "t", "HUBSPOT_CLIENT_SECRET": "s", "SALESFORCE_TOKEN": "t", "SCRM_CRM_WEBHOOK_SECRET": "s", "MARKETO_CLIENT_ID": "i",
            "MARKETO_CLIENT_SECRET": "s",
        ]
        let specs = try CRMAdapterSpecParser.load(
            directory: Self.root.appendingPathComponent("adapters/crm").path, names: ["crm-hubspot", "crm-salesforce", "crm-webhook", "crm-marketo"], environment: env)
        XCTAssertEqual(specs.map(\.batchSize), [100, 200, 100, 300])
        XCTAssertEqual(specs[0].budget, CRMBudget.Limit(requests: 100, windowMs: 10_000))
        var marketo = CRMBudget.Limit(requests: 100, windowMs: 20_000, concurrent: 10, daily: 50_000)
        marketo.dailyTimeZone = TimeZone(identifier: "America/Chicago")!
        XCTAssertEqual(specs[3].budget, marketo, "Marketo's documented limits")
        func reason(_ yaml: String, env: [String: String] = [:]) -> String {
            do {
                _ = try CRMAdapterSpecParser.parse(yaml: yaml, file: "x.yaml", environment: env)
                return "parsed"
            } catch let e as CRMSpecError { return "\(e.path): \(e.reason)" } catch { return "\(error)" }
        }
        let base = "name: x\nstyle: hubspot\nsettings: { base_url: http://h, token: env:T }\nbudget: { requests: 1 }\n"
        XCTAssertEqual(reason(base + "fields: { scrm_id: id }"), "settings.token: environment variable T is not set")
        XCTAssertEqual(reason(base + "fields: { scrm_id: id }\nbatch: { size: 101 }", env: ["T": "t"]).hasPrefix("batch.size"), true)
        XCTAssertEqual(reason(base + "fields: { email: email }", env: ["T": "t"]), "fields: must map scrm_id (the id_property) to id")
        XCTAssertEqual(reason(base + "fields: { scrm_id: id, x: nope }", env: ["T": "t"]).hasPrefix("fields.x: unknown value nope"), true)
        let marketoBase = "name: x\nstyle: marketo\nsettings: { base_url: http://m, client_id: i }\nfields: { scrmId: id }\n"
        XCTAssertEqual(reason(marketoBase + "budget: { requests: 1 }"), "settings.client_secret: is required for style marketo")
        XCTAssertEqual(
            reason(marketoBase.replacingOccurrences(of: "client_id: i", with: "client_id: i, client_secret: s") + "budget: { requests: 1, daily_time_zone: Mars/Olympus }"),
            "budget.daily_time_zone: unknown time zone Mars/Olympus (an IANA name such as America/Chicago)")
    }
}
