import FakeProviders
import Foundation
import GatewayCore
import HTTPTransport
import RedisClient
import Store
import TestSupport
import XCTest

/// The campaigns issue's crash test: a 20,000-recipient campaign through real gateway processes to the
/// loopback WeChat fake (which, like WeChat, sends one message per openid + client_msg_id within 10
/// minutes). The first process is killed (SIGKILL) while planning, Redis is killed and restarted from
/// its AOF while the second sends, and the second is killed too. Counted at the fake: every eligible
/// recipient got the message exactly once, and no ineligible one got anything.
/// `scripts/drill campaign-crash` runs it bigger through the environment: SCRM_CRASH_RECIPIENTS
/// (20,000), SCRM_CRASH_GATEWAYS (1; with more, each kill picks one at random) and SCRM_CRASH_KILLS
/// (2: one while planning, the rest spread over sending).
final class CampaignCrashTests: XCTestCase {
    static let token = "crash-admin-token-0123456789"

    func test_killDashNineTwiceAndARedisRestart_messageEveryRecipientExactlyOnce() async throws {
        let binary = try GatewayProcess.binary()
        let env0 = ProcessInfo.processInfo.environment
        let n = env0["SCRM_CRASH_RECIPIENTS"].flatMap { Int($0) } ?? 20_000
        let gatewayCount = max(1, env0["SCRM_CRASH_GATEWAYS"].flatMap { Int($0) } ?? 1)
        let kills = max(1, env0["SCRM_CRASH_KILLS"].flatMap { Int($0) } ?? 2)
        let patience = 90 * max(1, Double(n) / 20_000)
        let redisServer = try RedisTestServer()
        let redis = RedisPool(redisServer.configuration)
        defer { redis.shutdown() }
        let fakes = try await ProviderFakes.start()
        let appId = "wxcrash000000001"
        fakes.wechat.addAccount(appId: appId, secret: "crash-app-secret")

        // Adapters as shipped, but the WeChat template without its rate limit: the run is quick, and the
        // messages take the batch send path (a rate-limited adapter's go one at a time).
        let work = redisServer.directory.appendingPathComponent("gateway")
        let adapters = try GatewayProcess.adapters(
            in: work, edits: ["wechat-template.yaml": ("rate_limit:\n  per_second: 100\n  burst: 100\n  scope: account\n", "")])
        let ports = try (0..<gatewayCount).map { _ in try LocalProcess.freePort() }
        let envs = try ports.enumerated().map { g, port in
            try GatewayProcess.crashConfig(
                in: work, index: g, port: port, redis: "url: \"\(redisServer.url)\"", adminToken: Self.token, adapters: adapters, appId: appId,
                appSecret: "crash-app-secret", fakes: fakes.environment)
        }
        let port = ports[0]

        // n followers of demo, plus 300 who unsubscribed (not eligible: nothing may reach them).
        let customers = CustomerStore(redis: redis, config: GatewayConfig())
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for start in stride(from: 0, to: n + 300, by: 1000) {
            let rows = (start..<min(start + 1000, n + 300)).map { i in
                CustomerStore.ImportRow(
                    identities: [Identity(kind: .openid, account: "demo", value: String(format: "oCRASH%06d", i))], tags: ["expo-2026"],
                    profile: ["nickname": "Fan \(i)"])
            }
            _ = try await customers.importBatch(rows, nowMs: now)
        }
        for i in n..<(n + 300) {
            let id = try await customers.lookup(Identity(kind: .openid, account: "demo", value: String(format: "oCRASH%06d", i)))
            _ = try await redis.send("HSET", Keys.customer(try XCTUnwrap(id)), "consent.wechat:demo", "revoked|\(now)")
            try await customers.reindex([id!])
        }

        var gateways = try envs.map { try LocalProcess.spawn([binary], environment: $0) }
        defer { gateways.forEach(LocalProcess.terminate) }
        for p in ports { try LocalProcess.waitUntil(port: p, accepting: true, what: "scrm-gateway") }
        let http = HTTPTransport()
        defer { http.shutdown() }
        func api(_ method: String, _ path: String, _ body: String) async throws -> [String: Any] {
            try await GatewayProcess.admin(http, port: port, token: Self.token, method, path, body)
        }
        let created = try await api(
            "POST", "/api/v1/campaigns",
            #"{"name":"crash","audience":"expo-2026","channels":[{"channel":"wechat","account":"demo","template":"TPL","data":{"first":"Hi {{profile.nickname}}"}}]}"#)
        let id = try XCTUnwrap(created["id"] as? String, "\(created)")
        let started = try await api("POST", "/api/v1/campaigns/\(id)/start", "{}")
        XCTAssertEqual(started["audienceSize"] as? Int, n + 300)

        func planned() async -> Int { (try? await redis.send("HGET", Keys.campaignStats(id), "planned").string).flatMap { Int($0 ?? "") } ?? 0 }
        func delivered() -> Int { fakes.ledger.deliveries("wechat.template").count }
        func waitFor(_ what: String, seconds: Double = 60, _ condition: () async -> Bool) async throws {
            try await GatewayProcess.waitFor(what, seconds: seconds, condition)
        }
        var killed = [String]()
        func restartGateway() throws {
            let g = Int.random(in: 0..<gateways.count)
            kill(gateways[g], SIGKILL)
            var status: Int32 = 0
            waitpid(gateways[g], &status, 0)
            gateways[g] = try LocalProcess.spawn([binary], environment: envs[g])
            killed.append("gateway \(g + 1)")
        }

        // 1. Killed while planning.
        try await waitFor("planning to start") { await planned() >= n / 10 }
        let plannedAtKill = await planned()
        try restartGateway()
        // 2. Redis dies and comes back (AOF) mid-send; 3. more kills spread over sending (60% with two).
        let marks = kills == 2 ? [n * 3 / 5] : (1..<kills).map { n * (2 + 5 * $0 / kills) / 10 }
        try await waitFor("\(n / 4) deliveries", seconds: patience) { delivered() >= n / 4 }
        redisServer.crash()
        try await Task.sleep(for: .milliseconds(300))
        try redisServer.start()
        var deliveredAtKills = [Int]()
        for mark in marks {
            try await waitFor("\(mark) deliveries", seconds: patience) { delivered() >= mark }
            deliveredAtKills.append(delivered())
            try restartGateway()
        }
        let deliveredAtKill = deliveredAtKills.map(String.init).joined(separator: ", ")

        var state = ""
        let end = Date().addingTimeInterval(patience + 30)
        while Date() < end {
            state = (try? await redis.send("HGET", Keys.campaign(id), "state").string ?? "") ?? ""
            if state == "completed" { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        let stats = try await redis.send("HGETALL", Keys.campaignStats(id)).dictionary
        XCTAssertEqual(state, "completed", "stats: \(stats)")
        let recipients = fakes.ledger.deliveries("wechat.template").map(\.to)
        let counts = Dictionary(grouping: recipients, by: { $0 }).mapValues(\.count)
        XCTAssertEqual(counts.count, n, "every eligible recipient messaged")
        XCTAssertEqual(counts.values.filter { $0 > 1 }.count, 0, "nobody messaged twice")
        XCTAssertFalse(counts.keys.contains { Int($0.dropFirst(6))! >= n }, "nobody who unsubscribed")
        XCTAssertEqual(stats["sent"], String(n))
        XCTAssertEqual(stats["skipped"], "300")
        XCTAssertEqual(stats["skip:wechat_unsubscribed"], "300")
        XCTAssertEqual(stats["open"], "0")
        print("campaign crash test: \(n) eligible recipients, \(gatewayCount) gateway(s); kill -9 (\(killed.joined(separator: ", "))) at \(plannedAtKill) planned and at \(deliveredAtKill) delivered, Redis killed and restarted at \(n / 4); RESULT deliveries=\(recipients.count) recipients=\(counts.count) duplicates=\(counts.values.filter { $0 > 1 }.count) missing=\(n - counts.count) unsubscribed_reached=\(counts.keys.filter { Int($0.dropFirst(6))! >= n }.count) fake_dedup_answers=\(fakes.ledger.calls("wechat.template") - recipients.count) state=\(state)")
        await fakes.stop()
    }
}
