import CRMSync
import FakeProviders
import Foundation
import GatewayCore
import HTTPAPI
import HTTPTransport
import Logging
import RedisClient
import Store
import XCTest

/// Qualified leads synced to the Eloqua fake: the base URL discovered through /id, small batches
/// contact by contact through REST (no upsert there), large ones as Bulk API 2.0 imports polled to the
/// end with their progress recorded.
final class EloquaSyncTests: XCTestCase {
    static let customFields = ["C_SCRM_Id1", "C_SCRM_Score1", "C_SCRM_Stage1"]
    static let environment = ["ELOQUA_SITE": "AcmeCorp", "ELOQUA_USER": "api.user", "ELOQUA_PASSWORD": "pw-1"]

    static func spec(login: String, batch: Int = 5000, minRecords: Int = 100, maxWaitMs: Int = 500) throws -> CRMAdapterSpec {
        try CRMAdapterSpecParser.parse(
            yaml: """
                name: crm-eloqua
                style: eloqua
                settings: { login_url: "\(login)", site: env:ELOQUA_SITE, user: env:ELOQUA_USER, password: env:ELOQUA_PASSWORD }
                batch: { size: \(batch), max_wait_ms: \(maxWaitMs) }
                bulk: { min_records: \(minRecords), poll_ms: 50 }
                budget: { requests: 50, window_ms: 1000, concurrent: 5 }
                fields: { C_EmailAddress: profile.contact, C_SCRM_Id1: id, C_FirstName: profile.nickname, C_SCRM_Score1: score, C_SCRM_Stage1: stage }
                """, file: "crm-eloqua.yaml", environment: environment)
    }

    static func fake(syncMs: Int = 600, password: String = "pw-1", rateLimit: Int? = nil) async throws -> (EloquaFake, FakeServer) {
        let eloqua = EloquaFake(site: "AcmeCorp", user: "api.user", password: password, customFields: customFields, syncMs: syncMs, rateLimit: rateLimit)
        return (eloqua, try await CRMSyncTests.fake { eloqua.add(to: $0) })
    }

    static func drained(_ h: Harness, _ spec: CRMAdapterSpec) async throws -> Bool {
        let s = try await CRMOutbox(redis: h.redis, adapter: spec.name).status()
        return s.waiting + s.inFlight + s.retrying == 0
    }

    static func deadLetters(_ h: Harness) async throws -> [[String: String]] {
        (try await h.redis.send("XRANGE", Keys.crmDeadLetters, "-", "+").array ?? []).compactMap { $0.array?.last?.dictionary }
    }

    /// 3,000 leads go as one Bulk API import: defined, uploaded, synced, polled until it ends. Its
    /// progress is readable while it runs (pending/active, polls rising) and in GET /api/v1/crm after;
    /// the row with an invalid email address is dead-lettered with Eloqua's status code.
    func test_aLargeBatch_isOneBulkImport_polledToCompletion_withItsProgress() async throws {
        let h = try Harness()
        let (eloqua, server) = try await Self.fake(syncMs: 1_500)
        defer { Task { await server.stop() } }
        let spec = try Self.spec(login: server.baseURL)
        h.crm = [spec]
        let ids = try await CRMSyncTests.qualifiedCustomers(h, 3_000, badEmail: [17])
        let worker = CRMSyncTests.worker(spec, h, concurrency: 2)
        let run = Task { await worker.run() }
        defer { run.cancel() }
        let outbox = CRMOutbox(redis: h.redis, adapter: spec.name)
        var seen = [String]()
        var pollsSeen = Set<Int>()
        try await CRMSyncTests.eventually("the import finished", timeout: .seconds(60)) {
            guard let b = try await outbox.bulkImports().first else { return false }
            if seen.last != b.status { seen.append(b.status) }
            pollsSeen.insert(b.polls)
            return b.finishedAt != nil
        }
        try await CRMSyncTests.eventually("the queue drained") { try await Self.drained(h, spec) }
        XCTAssertEqual(seen.first, "pending", "progress seen from the start: \(seen)")
        XCTAssertTrue(seen.contains("active"), "and while it ran: \(seen)")
        XCTAssertEqual(seen.last, "warning", "one row rejected: \(seen)")
        XCTAssertGreaterThan(pollsSeen.count, 3, "the poll count rose while it ran")
        let latest = try await outbox.bulkImports().first
        let b = try XCTUnwrap(latest)
        XCTAssertEqual(b.records, 3_000)
        XCTAssertEqual(b.created, 2_999)
        XCTAssertEqual(b.updated, 0)
        XCTAssertEqual(b.rejected, 1)
        XCTAssertEqual(eloqua.contacts.count, 2_999)
        let calls = eloqua.calls
        XCTAssertEqual(calls["discover"], 1)
        XCTAssertEqual(calls["import"], 1, "one import for the whole batch: \(calls)")
        XCTAssertEqual(calls["upload"], 1)
        XCTAssertEqual(calls["sync"], 1)
        XCTAssertNil(calls["create"], "no REST call for a large batch")
        XCTAssertEqual(eloqua.largestUpload, 3_000)
        let contact = try XCTUnwrap(eloqua.contacts(by: "C_SCRM_Id1")[ids[0]])
        XCTAssertEqual(contact.email, "lead0@example.com")
        XCTAssertEqual(contact.fields["C_FirstName"], "Lead 0")
        XCTAssertEqual(contact.fields["C_SCRM_Stage1"], "engaged")
        let dead = try await Self.deadLetters(h)
        XCTAssertEqual(dead.count, 1)
        XCTAssertEqual(dead.first?["customer"], ids[17])
        XCTAssertEqual(dead.first?["reason"], "ELQ-00002", "Eloqua's status code for the rejected row")
        try await h.test { client in
            let all = try await client.get("/api/v1/crm").json
            let a = try XCTUnwrap((all["adapters"] as? [[String: Any]])?.first)
            XCTAssertEqual(a["style"] as? String, "eloqua")
            let imports = try XCTUnwrap(a["bulkImports"] as? [[String: Any]])
            XCTAssertEqual(imports.first?["status"] as? String, "warning")
            XCTAssertEqual(imports.first?["records"] as? Int, 3_000)
            XCTAssertEqual(imports.first?["created"] as? Int, 2_999)
            XCTAssertEqual(imports.first?["rejected"] as? Int, 1)
            XCTAssertNotNil(imports.first?["finishedAt"] as? String)
            // The console's dashboard shows it to a marketer.
            let (cookie, _) = try await ConsoleActionTests.signIn(client, "mara", role: "marketer")
            let dashboard = try await client.execute(uri: "/console", method: .get, headers: [.cookie: cookie]).text
            XCTAssertTrue(dashboard.contains("bulk import \(b.sync): <strong>warning</strong> · 3,000 contacts"), dashboard)
            XCTAssertTrue(dashboard.contains("created 2999") || dashboard.contains("created 2,999"), dashboard)
        }
    }

    /// A small batch goes contact by contact: created; one whose email another system already holds is
    /// a 409, found by email and updated; a change later updates by the contact id we stored. A
    /// customer without an email address is dead-lettered (no_email).
    func test_smallBatches_goThroughREST_createConflictSearchUpdate() async throws {
        let h = try Harness()
        let (eloqua, server) = try await Self.fake()
        defer { Task { await server.stop() } }
        let spec = try Self.spec(login: server.baseURL, maxWaitMs: 0)
        let existing = eloqua.seed(email: "lead2@example.com", fields: ["C_FirstName": "From a trade show"])
        let store = CustomerStore(redis: h.redis, config: h.config)
        _ = try await store.importBatch([.init(identities: [Identity(kind: .unionid, value: "no-email")])], nowMs: h.now)
        let noEmail = try await store.lookup(Identity(kind: .unionid, value: "no-email"))!
        let ids = try await CRMSyncTests.qualifiedCustomers(h, 4)
        _ = try await ScoreStore(redis: h.redis).apply(customer: noEmail, interaction: "q-x", hits: [CRMSyncTests.qualifyRule], rules: CRMSyncTests.rules, nowMs: h.now)
        let run = Task { await CRMSyncTests.worker(spec, h).run() }
        defer { run.cancel() }
        try await CRMSyncTests.eventually("4 contacts (one of them the existing one) and a dead letter") {
            let dead = try await Self.deadLetters(h)
            let drained = try await Self.drained(h, spec)
            return eloqua.contacts.count == 4 && dead.count == 1 && drained
        }
        var calls = eloqua.calls
        XCTAssertEqual(calls["create"], 4, "one per lead, one of them a 409: \(calls)")
        XCTAssertEqual(calls["search"], 1, "the 409 was searched for by email")
        XCTAssertEqual(calls["update"], 1, "and updated")
        XCTAssertNil(calls["import"], "no bulk import for a small batch")
        XCTAssertEqual(eloqua.contacts[existing]?.fields["C_SCRM_Id1"], ids[2], "the existing contact now holds our id")
        XCTAssertEqual(eloqua.contacts[existing]?.fields["C_FirstName"], "Lead 2")
        let dead = try await Self.deadLetters(h)
        XCTAssertEqual(dead.first?["customer"], noEmail)
        XCTAssertEqual(dead.first?["reason"], "no_email")
        let bound = try await h.redis.send("GET", Keys.identity(Identity(kind: .crm, account: spec.name, value: existing))).string
        XCTAssertEqual(bound, ids[2], "the contact id came back as the customer's crm identity")

        // A later change is an update by that id: no create, no search.
        var patch = CustomerStore.ProfilePatch()
        patch.fields = ["profile.nickname": "Ann"]
        _ = try await store.patch(id: ids[0], patch, nowMs: h.now)
        try await CRMOutbox(redis: h.redis, adapter: spec.name).enqueue([ids[0]])
        try await CRMSyncTests.eventually("the change in Eloqua") { eloqua.contacts(by: "C_SCRM_Id1")[ids[0]]?.fields["C_FirstName"] == "Ann" }
        calls = eloqua.calls
        XCTAssertEqual(calls["create"], 4)
        XCTAssertEqual(calls["search"], 1)
        XCTAssertEqual(calls["update"], 2)
        XCTAssertEqual(calls["discover"], 1, "the base URL was discovered once")
    }

    /// Two processes share one discovery (Redis); bad credentials ("Not authenticated." from /id)
    /// pause the sync with the reason shown, and nothing is lost.
    func test_discovery_sharedByProcesses_andRefusedCredentialsPauseTheSync() async throws {
        let h = try Harness()
        let (eloqua, server) = try await Self.fake(password: "another-password")
        defer { Task { await server.stop() } }
        let spec = try Self.spec(login: server.baseURL, minRecords: 1_000, maxWaitMs: 0)
        _ = try await CRMSyncTests.qualifiedCustomers(h, 20)
        var run = Task { await CRMSyncTests.worker(spec, h, concurrency: 1).run() }
        try await CRMSyncTests.eventually("the refusal recorded") {
            try await CRMOutbox(redis: h.redis, adapter: spec.name).status().fields["lastError"]?.contains("Not authenticated") == true
        }
        run.cancel()
        let paused = try await CRMBudget(redis: h.redis, adapter: spec.name, limit: spec.budget).pausedUntil()
        XCTAssertGreaterThan(paused ?? .distantPast, Date().addingTimeInterval(60), "paused for minutes, not hammering /id")
        XCTAssertEqual(eloqua.contacts.count, 0)
        let status = try await CRMOutbox(redis: h.redis, adapter: spec.name).status()
        XCTAssertEqual(status.waiting + status.inFlight, 20, "every lead waits")
        let dead = try await Self.deadLetters(h)
        XCTAssertTrue(dead.isEmpty)

        // The right credentials: two processes, one discovery.
        _ = try await h.redis.send("DEL", Keys.crmPause(adapter: spec.name))
        let (good, goodServer) = try await Self.fake()
        defer { Task { await goodServer.stop() } }
        let fixed = try Self.spec(login: goodServer.baseURL, minRecords: 1_000, maxWaitMs: 0)
        run = Task { await CRMSyncTests.worker(fixed, h, concurrency: 1).run() }
        let second = Task { await CRMSyncTests.worker(fixed, h, concurrency: 1).run() }
        defer {
            run.cancel()
            second.cancel()
        }
        try await CRMSyncTests.eventually("20 contacts") { good.contacts.count == 20 }
        XCTAssertEqual(good.calls["discover"], 1, "one discovery for both processes")
        XCTAssertEqual(good.calls["fields"], 1)

        // Eloqua answers 401 (the instance moved): the base URL is discovered again, nothing lost.
        good.refuseNext(1)
        let more = try await CRMSyncTests.qualifiedCustomers(h, 25).suffix(5)
        try await CRMOutbox(redis: h.redis, adapter: spec.name).enqueue(Array(more))
        try await CRMSyncTests.eventually("25 contacts") { good.contacts.count == 25 }
        try await CRMSyncTests.eventually("the queue drained") { try await Self.drained(h, fixed) }
        XCTAssertEqual(good.calls["discover"], 2, "discovered again after the 401")
        let deadAfter = try await Self.deadLetters(h)
        XCTAssertTrue(deadAfter.isEmpty, "\(deadAfter)")
    }

    /// Eloqua answering 429 (it publishes no REST limit, only the status): the batch's remaining
    /// contacts are held without spending an attempt, every process pauses, and all arrive in the end.
    func test_eloquas429_holdsTheRest_andPauses_nothingLost() async throws {
        let h = try Harness()
        let (eloqua, server) = try await Self.fake(rateLimit: 8)
        defer { Task { await server.stop() } }
        let spec = try Self.spec(login: server.baseURL, minRecords: 1_000, maxWaitMs: 0)
        _ = try await CRMSyncTests.qualifiedCustomers(h, 60)
        let run = Task { await CRMSyncTests.worker(spec, h, concurrency: 2).run() }
        defer { run.cancel() }
        try await CRMSyncTests.eventually("60 contacts", timeout: .seconds(60)) {
            let drained = try await Self.drained(h, spec)
            return eloqua.contacts.count == 60 && drained
        }
        XCTAssertGreaterThan(eloqua.throttled, 0, "the fake's limit was hit")
        let dead = try await Self.deadLetters(h)
        XCTAssertTrue(dead.isEmpty, "a 429 is never the record's fault: \(dead)")
        let status = try await CRMOutbox(redis: h.redis, adapter: spec.name).status()
        XCTAssertGreaterThan(Int(status.fields["throttled"] ?? "0") ?? 0, 0, "counted in the adapter's status")
        XCTAssertTrue(eloqua.contacts.values.allSatisfy { $0.writes == 1 }, "each contact written once")
    }

    /// Erasure: a contact whose id we hold is deleted by it; one whose id never came back (a bulk
    /// import returns none) is found by our id first.
    func test_erasure_deletesTheContact_findingItByOurIdAfterABulkImport() async throws {
        let h = try Harness()
        let (eloqua, server) = try await Self.fake(syncMs: 100)
        defer { Task { await server.stop() } }
        let spec = try Self.spec(login: server.baseURL, minRecords: 3, maxWaitMs: 0)
        let ids = try await CRMSyncTests.qualifiedCustomers(h, 3)
        let run = Task { await CRMSyncTests.worker(spec, h, concurrency: 1).run() }
        defer { run.cancel() }
        try await CRMSyncTests.eventually("3 contacts by a bulk import") { eloqua.contacts.count == 3 && eloqua.calls["sync"] == 1 }
        try await CRMSyncTests.eventually("the queue drained") { try await Self.drained(h, spec) }
        // One of them also synced through REST (its id stored).
        try await CRMOutbox(redis: h.redis, adapter: spec.name).enqueue([ids[0]])
        try await CRMSyncTests.eventually("its id stored") {
            try await CRMOutbox(redis: h.redis, adapter: spec.name).customerStatus(ids[0]).fields["recordId"] != nil
        }
        let erasure = CustomerErasure(redis: h.redis, config: h.config, crmAdapters: [spec.name], clock: h.clock)
        for id in ids.prefix(2) { _ = try await erasure.erase(id, by: "test") }
        try await CRMSyncTests.eventually("both contacts deleted") {
            let waiting = try await h.redis.send("ZCARD", Keys.crmErase(adapter: spec.name)).int
            return eloqua.contacts.count == 1 && waiting == 0
        }
        XCTAssertNotNil(eloqua.contacts(by: "C_SCRM_Id1")[ids[2]], "the other contact stays")
        XCTAssertEqual(eloqua.calls["delete"], 2)
        XCTAssertGreaterThanOrEqual(eloqua.calls["search"] ?? 0, 1, "the one without an id was searched for by ours")
    }
}
