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

/// Qualified leads synced to the Marketo fake, which enforces Marketo's limits: 300 leads and 1 MB a
/// call, 100 calls per 20 s (606), 10 at once (615), a daily quota (607) and expiring access tokens
/// (602), all answered HTTP 200 with `success: false` as Marketo does.
final class MarketoSyncTests: XCTestCase {
    static func spec(base: String, daily: Int = 50_000, batch: Int = 300, maxWaitMs: Int = 5_000, extra: String = "") throws -> CRMAdapterSpec {
        try CRMAdapterSpecParser.parse(
            yaml: """
                name: crm-marketo
                style: marketo
                settings: { base_url: "\(base)", client_id: env:MARKETO_CLIENT_ID, client_secret: env:MARKETO_CLIENT_SECRET }
                id_property: scrmId
                batch: { size: \(batch), max_wait_ms: \(maxWaitMs) }
                budget: { requests: 100, window_ms: 20000, concurrent: 10, daily: \(daily), daily_time_zone: America/Chicago }
                fields: { scrmId: id, email: profile.contact, firstName: profile.nickname, scrmScore: score, scrmStage: stage }
                \(extra)
                """, file: "crm-marketo.yaml", environment: ["MARKETO_CLIENT_ID": "client-1", "MARKETO_CLIENT_SECRET": "secret-1"])
    }

    static func fake(_ marketo: MarketoFake) async throws -> FakeServer {
        try await CRMSyncTests.fake { marketo.add(to: $0) }
    }

    func test_tenThousandLeads_inAtMost34Calls_noneOver300_neverThrottled_aSkipDeadLetteredWithItsReason() async throws {
        let h = try Harness()
        let marketo = MarketoFake(clientId: "client-1", clientSecret: "secret-1")
        let server = try await Self.fake(marketo)
        defer { Task { await server.stop() } }
        let spec = try Self.spec(base: server.baseURL)
        let ids = try await CRMSyncTests.qualifiedCustomers(h, 10_000, badEmail: [4321])
        let worker = CRMSyncTests.worker(spec, h, concurrency: 4)
        let run = Task { await worker.run() }
        defer { run.cancel() }
        try await CRMSyncTests.eventually("9,999 leads in Marketo and one dead letter", timeout: .seconds(120)) {
            let dlq = try await h.redis.send("XLEN", Keys.crmDeadLetters).int ?? 0
            let s = try await CRMOutbox(redis: h.redis, adapter: spec.name).status()
            return marketo.crm.records.count == 9_999 && dlq == 1 && s.waiting + s.inFlight + s.retrying == 0
        }
        XCTAssertLessThanOrEqual(marketo.crm.calls, 34, "10,000 leads in calls of up to 300")
        XCTAssertLessThanOrEqual(marketo.crm.largestBatch, 300)
        XCTAssertEqual(marketo.crm.throttled, 0, "never over 100 calls per 20 s")
        XCTAssertNil(marketo.refused["606"])
        XCTAssertNil(marketo.refused["615"])
        XCTAssertLessThanOrEqual(marketo.mostAtOnce, 10)
        XCTAssertEqual(marketo.tokensIssued, 1)
        XCTAssertTrue(marketo.crm.records.values.allSatisfy { $0.writes == 1 }, "each lead written once")
        let lead = try XCTUnwrap(marketo.crm.records[ids[0]])
        XCTAssertEqual(lead.properties["email"], "lead0@example.com")
        XCTAssertEqual(lead.properties["scrmStage"], "engaged")
        XCTAssertEqual(lead.properties["scrmScore"], "20")
        let owner = try await h.redis.send("GET", "idx:crm:crm-marketo:\(lead.recordId)").string
        XCTAssertEqual(owner, ids[0], "the lead id came back as the customer's crm identity")
        let letters = try await h.redis.send("XRANGE", Keys.crmDeadLetters, "-", "+").array
        let dead = try XCTUnwrap(letters?.first?.array?.last?.dictionary)
        XCTAssertEqual(dead["customer"], ids[4321])
        XCTAssertEqual(dead["reason"], "1003", "Marketo's skip reason code")
        XCTAssertTrue(dead["message"]?.contains("email") == true, dead["message"] ?? "")
    }

    /// Our count of the day's calls reaching the quota suspends the sync for every process until the
    /// quota's midnight, and GET /api/v1/crm says so; so does Marketo's own 607 (a quota other
    /// integrations spent).
    func test_dailyQuota_ourCountOrMarketos607_suspendsTheSyncUntilTheReset() async throws {
        let h = try Harness()
        let marketo = MarketoFake(clientId: "client-1", clientSecret: "secret-1")
        let server = try await Self.fake(marketo)
        defer { Task { await server.stop() } }
        let spec = try Self.spec(base: server.baseURL, daily: 2, batch: 100, maxWaitMs: 0)
        h.crm = [spec]
        _ = try await CRMSyncTests.qualifiedCustomers(h, 500)
        let worker = CRMSyncTests.worker(spec, h, concurrency: 2)
        var run = Task { await worker.run() }
        try await CRMSyncTests.eventually("two calls") { marketo.crm.records.count == 200 }
        try await Task.sleep(for: .milliseconds(800))
        XCTAssertEqual(marketo.crm.calls, 2, "no call past the quota")
        let reset = CRMBudget.quotaDay(Date(), in: TimeZone(identifier: "America/Chicago")!).resetsAt
        try await h.test { client in
            let all = try await client.get("/api/v1/crm").json
            let a = try XCTUnwrap((all["adapters"] as? [[String: Any]])?.first)
            let daily = try XCTUnwrap((a["budget"] as? [String: Any])?["daily"] as? [String: Any])
            XCTAssertEqual(daily["used"] as? Int, 2)
            XCTAssertEqual(daily["limit"] as? Int, 2)
            XCTAssertEqual(daily["resetsAt"] as? String, JSONResponse.isoTime(Int64(reset.timeIntervalSince1970 * 1000)))
            XCTAssertEqual(a["pausedUntil"] as? String != nil, true, "suspended")
            XCTAssertEqual((a["queue"] as? [String: Any])?["waiting"] as? Int, 300, "the rest waits for the reset")
            // The console's dashboard says so too.
            let (cookie, _) = try await ConsoleActionTests.signIn(client, "mara", role: "marketer")
            let dashboard = try await client.execute(uri: "/console", method: .get, headers: [.cookie: cookie])
            XCTAssertTrue(dashboard.text.contains("daily quota 2 / 2") && dashboard.text.contains("paused until"), dashboard.text)
        }
        run.cancel()

        // Marketo's quota is spent by someone else: its 607 suspends the sync too.
        _ = try await h.redis.send("DEL", Keys.crmPause(adapter: spec.name))
        let ours = try Self.spec(base: server.baseURL, daily: 1_000, batch: 100, maxWaitMs: 0)
        marketo.setDailyQuota(3)
        run = Task { await CRMSyncTests.worker(ours, h, concurrency: 1).run() }
        defer { run.cancel() }
        try await CRMSyncTests.eventually("Marketo's 607") { marketo.refused["607"] == 1 }
        try await Task.sleep(for: .milliseconds(500))
        XCTAssertEqual(marketo.refused["607"], 1, "one refusal, then the sync waits for the reset")
        XCTAssertEqual(marketo.crm.records.count, 300)
        let paused = try await CRMBudget(redis: h.redis, adapter: spec.name, limit: ours.budget).pausedUntil()
        XCTAssertEqual(abs((paused ?? .distantPast).timeIntervalSince(reset)) < 5, true, "suspended until the quota's midnight")
        let status = try await CRMOutbox(redis: h.redis, adapter: spec.name).status()
        XCTAssertTrue(status.fields["lastError"]?.contains("daily quota") == true, status.fields["lastError"] ?? "")
        XCTAssertEqual(status.waiting, 200, "nothing lost: the refused batch waits with the rest")
    }

    /// Two processes share one access token; when Marketo expires it (602), one new token is fetched
    /// for both, and the refused batches go again without spending an attempt.
    func test_tokenExpiry_oneNewTokenAcrossTwoProcesses() async throws {
        let h = try Harness()
        let marketo = MarketoFake(clientId: "client-1", clientSecret: "secret-1", delayMs: 100)
        let server = try await Self.fake(marketo)
        defer { Task { await server.stop() } }
        let spec = try Self.spec(base: server.baseURL, batch: 50, maxWaitMs: 0)
        _ = try await CRMSyncTests.qualifiedCustomers(h, 1_500)
        let first = Task { await CRMSyncTests.worker(spec, h, concurrency: 2).run() }
        let second = Task { await CRMSyncTests.worker(spec, h, concurrency: 2).run() }
        defer {
            first.cancel()
            second.cancel()
        }
        try await CRMSyncTests.eventually("the first 300 leads") { marketo.crm.records.count >= 300 }
        marketo.expireToken()
        try await CRMSyncTests.eventually("every lead", timeout: .seconds(60)) { marketo.crm.records.count == 1_500 }
        XCTAssertGreaterThanOrEqual(marketo.refused["602"] ?? 0, 1, "calls made with the expired token were refused")
        XCTAssertEqual(marketo.tokensIssued, 2, "one token at the start, one after the expiry, for both processes")
        let dlq = try await h.redis.send("XLEN", Keys.crmDeadLetters).int
        XCTAssertEqual(dlq, 0)
        XCTAssertTrue(marketo.crm.records.values.allSatisfy { $0.writes == 1 }, "a refused call wrote nothing, so nothing twice")
    }

    /// With an activity type configured, a synced lead's interactions become custom activities, each
    /// once: a later sync sends only what happened since.
    func test_interactionsBecomeCustomActivities_eachOnce() async throws {
        let h = try Harness()
        let marketo = MarketoFake(clientId: "client-1", clientSecret: "secret-1")
        let server = try await Self.fake(marketo)
        defer { Task { await server.stop() } }
        let spec = try Self.spec(base: server.baseURL, maxWaitMs: 0, extra: "activities: { type_id: 100001, detail_attribute: scrmDetail }")
        let ids = try await CRMSyncTests.qualifiedCustomers(h, 3)
        let timeline = try await h.redis.send("LLEN", "cust:{\(ids[0])}:timeline").int ?? 0
        XCTAssertGreaterThanOrEqual(timeline, 2, "a score and a qualification at least")
        let run = Task { await CRMSyncTests.worker(spec, h, concurrency: 1).run() }
        defer { run.cancel() }
        try await CRMSyncTests.eventually("3 leads' activities") { marketo.activities.count == 3 * timeline }
        let lead = try XCTUnwrap(marketo.crm.records[ids[0]]?.recordId)
        let first = marketo.activities.filter { $0.leadId == lead }
        XCTAssertEqual(first.count, timeline)
        XCTAssertEqual(Set(first.map(\.primary)), ["score", "lead.qualified"])
        XCTAssertEqual(first.first?.typeId, 100001)
        XCTAssertNotNil(first.first?.attributes["scrmDetail"])

        // One more interaction: the lead is synced again, and only that interaction becomes an activity.
        let click = ScoringRules.Rule(id: "click", on: "event.CLICK", condition: nil, points: 5, maxPerDay: nil, tags: [], qualify: false)
        _ = try await ScoreStore(redis: h.redis).apply(customer: ids[0], interaction: "click-1", hits: [click], rules: CRMSyncTests.rules, nowMs: h.now + 60_000)
        try await CRMSyncTests.eventually("the new activity") { marketo.activities.count == 3 * timeline + 1 }
        try await Task.sleep(for: .milliseconds(300))
        XCTAssertEqual(marketo.activities.count, 3 * timeline + 1, "nothing sent twice")
        XCTAssertEqual(marketo.crm.records[ids[0]]?.writes, 2)
        let status = try await CRMOutbox(redis: h.redis, adapter: spec.name).status()
        XCTAssertEqual(status.fields["activities"], String(3 * timeline + 1))
    }

    /// An erased customer's lead is deleted by its Marketo id; one whose id never came back is found
    /// by our lookup field first.
    func test_erasure_deletesTheLead_findingItByOurIdWhenItsIdIsUnknown() async throws {
        let h = try Harness()
        let marketo = MarketoFake(clientId: "client-1", clientSecret: "secret-1")
        let server = try await Self.fake(marketo)
        defer { Task { await server.stop() } }
        let spec = try Self.spec(base: server.baseURL, maxWaitMs: 0)
        let ids = try await CRMSyncTests.qualifiedCustomers(h, 3)
        let run = Task { await CRMSyncTests.worker(spec, h).run() }
        defer { run.cancel() }
        try await CRMSyncTests.eventually("3 leads") { marketo.crm.records.count == 3 }
        let leads = ids.prefix(2).compactMap { marketo.crm.records[$0]?.recordId }
        _ = try await h.redis.send("HDEL", Keys.crmCustomer(adapter: spec.name, customer: ids[1]), "recordId")
        let erasure = CustomerErasure(redis: h.redis, config: h.config, crmAdapters: [spec.name], clock: h.clock)
        for id in ids.prefix(2) { _ = try await erasure.erase(id, by: "test") }
        try await CRMSyncTests.eventually("both leads deleted") {
            let waiting = try await h.redis.send("ZCARD", Keys.crmErase(adapter: spec.name)).int
            return Set(marketo.deleted) == Set(leads) && waiting == 0
        }
        XCTAssertEqual(marketo.crm.records.count, 1, "the other lead stays")
        let erased = try await h.redis.send("HGET", Keys.crmStatus(adapter: spec.name), "erased").string
        XCTAssertEqual(erased, "2")
    }

    /// A batch is cut to 1 MB; the leads past it go in the next call.
    func test_aBatchOverOneMegabyte_isSplit() async throws {
        let h = try Harness()
        let marketo = MarketoFake(clientId: "client-1", clientSecret: "secret-1")
        let server = try await Self.fake(marketo)
        defer { Task { await server.stop() } }
        let spec = try Self.spec(base: server.baseURL, maxWaitMs: 0)
        let big = String(repeating: "名", count: 2_000)  // 6 KB or more a lead: 300 of them are over 1.8 MB
        _ = try await CRMSyncTests.qualifiedCustomers(h, 300, nickname: { "\($0) \(big)" })
        let run = Task { await CRMSyncTests.worker(spec, h, concurrency: 1).run() }
        defer { run.cancel() }
        try await CRMSyncTests.eventually("300 leads") { marketo.crm.records.count == 300 }
        XCTAssertNil(marketo.refused["413"], "no call over 1 MB")
        XCTAssertGreaterThanOrEqual(marketo.crm.calls, 2)
        XCTAssertLessThan(marketo.crm.largestBatch, 300, "the batch of 300 was cut")
        XCTAssertTrue(marketo.crm.records.values.allSatisfy { $0.writes == 1 })
    }
}
