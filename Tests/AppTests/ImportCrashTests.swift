import Foundation
import GatewayCore
import RedisClient
import Store
import TestSupport
import XCTest

/// The real `scrm-gateway` applying a 40,000-row import, killed with -9 in the middle: the next
/// process resumes at the job's checkpoint once the dead one's lease lapses, and every row is applied
/// exactly once (created + updated = rows; no customer twice; the linking rows merged once each).
final class ImportCrashTests: XCTestCase {
    func test_killDashNineMidImport_resumesWithoutApplyingAnyRowTwice() async throws {
        let binary = try GatewayProcess.binary()
        let target = try CrashRedis()
        let redis = target.pool
        let root = GatewayProcess.root
        let port = try LocalProcess.freePort()
        let config = target.directory.appendingPathComponent("gateway.yaml")
        try """
            server: { host: 127.0.0.1, port: \(port) }
            redis: { \(target.locator), connections: 4 }
            outbound: { adaptersDir: \(root.appendingPathComponent("adapters").path), concurrency: 0 }
            \(GatewayProcess.privacyYAML)
            accounts:
              - { id: demo, platform: wechat, appId: wximport00000001, token: importtoken, mode: plain }
            """.write(to: config, atomically: true, encoding: .utf8)
        let env = ["SCRM_CONFIG": config.path, "SCRM_LOG_LEVEL": "error"]

        // 2,000 customers by email and 2,000 by phone; import row i < 2,000 holds both, linking a pair.
        let gatewayConfig = try ConfigLoader(environment: [:]).load(path: config.path)
        let customers = CustomerStore(redis: redis, config: gatewayConfig)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let pairs = 2000
        for start in stride(from: 0, to: pairs, by: 500) {
            try await customers.importBatch(
                (start..<start + 500).flatMap { i in
                    [CustomerStore.ImportRow(identities: [Self.email(i)]), CustomerStore.ImportRow(identities: [Self.phone(i)])]
                }, nowMs: now)
        }
        // The upload, already received and spooled: 400 chunks of 100 rows.
        let n = 40_000
        let jobs = CustomerImportStore(redis: redis, config: gatewayConfig)
        let id = ULID.make(milliseconds: now)
        try await jobs.create(id: id, format: "csv", source: "crash", nowMs: now)
        var chunk = 0
        for start in stride(from: 0, to: n, by: 100) {
            var r = CustomerImportStore.Received()
            r.rows = (start..<start + 100).map { i in
                CustomerImportRow(
                    line: i + 2, identities: i < pairs ? [Self.email(i), Self.phone(i)] : [Self.email(i)], tags: ["imported"],
                    profile: [("profile.spend", String(i))], consent: [])
            }
            r.rowsRead = 100
            chunk = try await jobs.spool(id: id, r, chunk: chunk, keptRejections: 0, nowMs: now)
        }
        try await jobs.received(id: id, nowMs: now)

        var gateway = try LocalProcess.spawn([binary], environment: env)
        defer { LocalProcess.terminate(gateway) }
        let deadline = ContinuousClock.now + .seconds(60)
        var applied = 0
        while applied < 50, ContinuousClock.now < deadline {
            applied = try await jobs.job(id: id)?.chunksApplied ?? 0
            try await Task.sleep(for: .milliseconds(5))
        }
        kill(gateway, SIGKILL)
        var status: Int32 = 0
        waitpid(gateway, &status, 0)
        let atKill = try await jobs.job(id: id)
        XCTAssertGreaterThanOrEqual(atKill?.chunksApplied ?? 0, 50)
        XCTAssertLessThan(atKill?.chunksApplied ?? 400, 400, "killed in the middle of the import")

        gateway = try LocalProcess.spawn([binary], environment: env)
        var job = atKill
        let finish = ContinuousClock.now + .seconds(90)
        while job?.state != .completed, ContinuousClock.now < finish {
            try await Task.sleep(for: .milliseconds(100))
            job = try await jobs.job(id: id)
        }
        XCTAssertEqual(job?.state, .completed)
        XCTAssertEqual(job?.created, n - pairs)
        XCTAssertEqual(job?.updated, pairs, "each row counted once: created + updated = rows")
        XCTAssertEqual(job?.merged, pairs)
        let live = try await target.indexMembers(Keys.customers).count
        XCTAssertEqual(live, n, "one customer per row")
        let tagged = try await target.indexMembers(Keys.tag("imported")).count
        XCTAssertEqual(tagged, n)
        let spendIndexed = try await target.indexMembers(Keys.attributeIndex("spend")).count
        XCTAssertEqual(spendIndexed, n)
        let leftovers = try await target.keys("imp:*:c:*")
        XCTAssertEqual(leftovers, [])
        for i in [0, 1999, 2000, 39_999] {
            let owner = try await customers.lookup(Self.email(i))
            let spend = try await redis.send("HGET", Keys.customer(try XCTUnwrap(owner)), "profile.spend").string
            XCTAssertEqual(spend, String(i))
        }
    }

    static func email(_ i: Int) -> Identity { Identity(kind: .email, value: "imp\(i)@example.com") }
    static func phone(_ i: Int) -> Identity { Identity(kind: .phone, value: String(format: "+86137%08d", i)) }
}
