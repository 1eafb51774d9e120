import CRMSync
import FakeProviders
import Foundation
import GatewayCore
import Hummingbird
import RedisClient
import Store
import TestSupport
import XCTest

/// The real `scrm-gateway` syncing 3,000 qualified leads to the fake HubSpot (each answer slowed so a
/// kill lands between HubSpot writing records and the gateway hearing about it), killed with -9 twice.
/// Every customer must end up as exactly one HubSpot record, with nothing dead-lettered.
final class CRMCrashTests: XCTestCase {
    static let token = "crm-crash-admin-token-0123456789"

    func test_killDashNineTwiceWhileSyncing_exactlyOneRecordPerCustomer() async throws {
        let binary = try GatewayProcess.binary()
        let target = try CrashRedis()
        let redis = target.pool
        let hubspot = HubSpotFake(token: "pat-na1-crash", delayMs: 400)
        let router = Router()
        hubspot.add(to: router)
        let fake = try await FakeServer.start(router)
        defer { Task { await fake.stop() } }

        let root = GatewayProcess.root
        let port = try LocalProcess.freePort()
        let config = target.directory.appendingPathComponent("gateway.yaml")
        try """
            server: { host: 127.0.0.1, port: \(port) }
            redis: { \(target.locator), connections: 4, commandTimeoutMs: 1000 }
            admin: { token: \(Self.token) }
            \(GatewayProcess.privacyYAML)
            outbound: { adaptersDir: \(root.appendingPathComponent("adapters").path), concurrency: 0 }
            scoring: { rules: \(root.appendingPathComponent("config/scoring.yaml").path) }
            crm: { adapters: crm-hubspot, specsDir: \(root.appendingPathComponent("adapters/crm").path), leaseSeconds: 5, concurrency: 2 }
            accounts:
              - { id: demo, platform: wechat, appId: wxcrash000000001, token: crashtoken, mode: plain }
            """.write(to: config, atomically: true, encoding: .utf8)
        let env = [
            "SCRM_CONFIG": config.path, "SCRM_LOG_LEVEL": "error", "SCRM_HUBSPOT_API_BASE": fake.baseURL, "HUBSPOT_TOKEN": "pat-na1-crash",
            "HUBSPOT_CLIENT_SECRET": "crash-secret", "SCRM_HUBSPOT_MAX_WAIT_MS": "200",
        ]

        let n = 3000
        let store = CustomerStore(redis: redis, config: GatewayConfig())
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for start in stride(from: 0, to: n, by: 1000) {
            let rows = (start..<min(start + 1000, n)).map { i in
                CustomerStore.ImportRow(identities: [Identity(kind: .email, value: "lead\(i)@example.com")], profile: ["nickname": "Lead \(i)"])
            }
            _ = try await store.importBatch(rows, nowMs: now)
        }
        let ids = try await target.indexMembers(Keys.customers)
        XCTAssertEqual(ids.count, n)
        _ = try await redis.pipelineChecked(
            ids.map { ["XADD", redis.streams.inbound(customer: $0), "*", "type", "message.text", "customer", $0, "payload", #"{"Content":"a demo please"}"#, "at", String(now)] })

        var gateway = try LocalProcess.spawn([binary], environment: env)
        defer { LocalProcess.terminate(gateway) }
        try LocalProcess.waitUntil(port: port, accepting: true, what: "scrm-gateway")
        var killTimes = [Int64]()
        for killAt in [600, 1800] {
            let deadline = ContinuousClock.now + .seconds(60)
            while hubspot.crm.records.count < killAt, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            XCTAssertGreaterThanOrEqual(hubspot.crm.records.count, killAt)
            kill(gateway, SIGKILL)
            killTimes.append(Int64(Date().timeIntervalSince1970 * 1000))
            var status: Int32 = 0
            waitpid(gateway, &status, 0)
            gateway = try LocalProcess.spawn([binary], environment: env)
            try LocalProcess.waitUntil(port: port, accepting: true, what: "scrm-gateway")
        }
        let outbox = CRMOutbox(redis: redis, adapter: "crm-hubspot")
        let deadline = ContinuousClock.now + .seconds(120)
        var synced = 0
        while ContinuousClock.now < deadline {
            let s = try await outbox.status()
            synced = Int(s.fields["synced"] ?? "0") ?? 0
            if hubspot.crm.records.count == n, s.waiting + s.inFlight + s.retrying == 0 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let touchEntries = try await redis.send("XRANGE", Keys.crmStream, "-", "+").array ?? []
        func touches(of customer: String) -> [String] {
            touchEntries.compactMap { e in
                guard let parts = e.array, parts.count == 2, parts[1].dictionary["customer"] == customer else { return nil }
                return "\(parts[0].string ?? "")/\(parts[1].dictionary["reason"] ?? "?")"
            }
        }
        // Where the customers that are not records stand: their sync state, queue, score and stream entry.
        var missing = [String]()
        for id in Set(ids).subtracting(hubspot.crm.records.keys).sorted().prefix(3) {
            let state = try await outbox.customerStatus(id)
            let customer = try await redis.send("HMGET", Keys.customer(id), "score", "stage", "qualifiedAt", "mergedInto").array?.map { $0.string ?? "-" } ?? []
            missing.append("\(id): crm \(state.fields) queue \(state.queue ?? "none"); touches \(touches(of: id)) (kills at \(killTimes)); score/stage/qualifiedAt/mergedInto \(customer)")
        }
        XCTAssertEqual(hubspot.crm.records.count, n, "every customer is a HubSpot record; not: \(missing)")
        XCTAssertTrue(Set(hubspot.crm.records.keys) == Set(ids), "one record per customer, keyed by our id: \(missing)")
        let writes = hubspot.crm.records.values.map(\.writes).reduce(0, +)
        XCTAssertGreaterThanOrEqual(synced, n)
        // How the rewritten records were written: how many times, and what each write carried (the same
        // twice = a batch sent again; a change = the customer synced again after a change).
        let rewritten = hubspot.crm.records.filter { $0.value.writes > 1 }
        let histogram = Dictionary(grouping: rewritten.values, by: \.writes).mapValues(\.count).sorted { $0.key < $1.key }
        let samples = rewritten.keys.sorted().prefix(5).map { k in "\(k): \(hubspot.crm.history(k).map { "\($0["scrm_stage"] ?? "-")/\($0["scrm_score"] ?? "-")/\($0["scrm_tags"] ?? "-")" })" }
        let touchReasons = Dictionary(grouping: touchEntries.map { $0.array?.last?.dictionary["reason"] ?? "?" }, by: { $0 }).mapValues(\.count)
        let firstRewritten = rewritten.keys.sorted().first ?? ""
        let itsTouches = touches(of: firstRewritten)
        let status = try await outbox.status().fields
        XCTAssertLessThan(
            writes, n + 1000,
            "only batches in flight at a kill were sent again (\(writes - n) rewrites; records by writes \(histogram); touches \(touchReasons), the first one's \(itsTouches) (kills at \(killTimes)); \(samples); status \(status))")
        XCTAssertLessThanOrEqual(hubspot.crm.largestBatch, 100)
        XCTAssertEqual(hubspot.crm.throttled, 0)
        let dlq = try await redis.send("XLEN", Keys.crmDeadLetters).int
        XCTAssertEqual(dlq, 0)
    }
}
