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
final class CampaignCrashTests: XCTestCase {
    static let token = "crash-admin-token-0123456789"

    func test_killDashNineTwiceAndARedisRestart_messageEveryRecipientExactlyOnce() async throws {
        let binary = try GatewayProcess.binary()
        let redisServer = try RedisTestServer()
        let redis = RedisPool(redisServer.configuration)
        defer { redis.shutdown() }
        let fakes = try await ProviderFakes.start()
        let appId = "wxcrash000000001"
        fakes.wechat.addAccount(appId: appId, secret: "crash-app-secret")

        // Adapters as shipped, but the WeChat template rate raised so the run is quick.
        let work = redisServer.directory.appendingPathComponent("gateway")
        let adapters = try GatewayProcess.adapters(in: work, edits: ["wechat-template.yaml": ("per_second: 100\n  burst: 100", "per_second: 20000\n  burst: 500")])
        let port = try LocalProcess.freePort()
        let config = work.appendingPathComponent("gateway.yaml")
        try """
            server: { host: 127.0.0.1, port: \(port) }
            redis: { url: "\(redisServer.url)", connections: 4, commandTimeoutMs: 1000 }
            admin: { token: \(Self.token) }
            outbound:
              adaptersDir: \(adapters.path)
              channels: { wechat: wechat-template, sms: sandbox-sms, email: sandbox-email }
              adapters: []
              concurrency: 16
              claimIdleSeconds: 2
            accounts:
              - { id: demo, platform: wechat, appId: \(appId), token: crashtoken, appSecret: crash-app-secret, mode: plain }
            """.write(to: config, atomically: true, encoding: .utf8)
        var env = fakes.environment
        env["SCRM_CONFIG"] = config.path
        env["SCRM_LOG_LEVEL"] = "error"

        // 20,000 followers of demo, plus 300 who unsubscribed (not eligible: nothing may reach them).
        let customers = CustomerStore(redis: redis, config: GatewayConfig())
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for start in stride(from: 0, to: 20_300, by: 1000) {
            let rows = (start..<min(start + 1000, 20_300)).map { i in
                CustomerStore.ImportRow(
                    identities: [Identity(kind: .openid, account: "demo", value: String(format: "oCRASH%06d", i))], tags: ["expo-2026"],
                    profile: ["nickname": "Fan \(i)"])
            }
            _ = try await customers.importBatch(rows, nowMs: now)
        }
        for i in 20_000..<20_300 {
            let id = try await customers.lookup(Identity(kind: .openid, account: "demo", value: String(format: "oCRASH%06d", i)))
            _ = try await redis.send("HSET", Keys.customer(try XCTUnwrap(id)), "consent.wechat:demo", "revoked|\(now)")
            try await customers.reindex([id!])
        }

        var gateway = try LocalProcess.spawn([binary], environment: env)
        defer { LocalProcess.terminate(gateway) }
        try LocalProcess.waitUntil(port: port, accepting: true, what: "scrm-gateway")
        let http = HTTPTransport()
        defer { http.shutdown() }
        func api(_ method: String, _ path: String, _ body: String) async throws -> [String: Any] {
            let r = try await http.send(HTTPRequest(
                method: method, url: "http://127.0.0.1:\(port)\(path)", headers: [("Authorization", "Bearer \(Self.token)"), ("Content-Type", "application/json")],
                body: Array(body.utf8), timeoutMs: 30_000))
            return (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any] ?? [:]
        }
        let created = try await api(
            "POST", "/api/v1/campaigns",
            #"{"name":"crash","audience":"expo-2026","channels":[{"channel":"wechat","account":"demo","template":"TPL","data":{"first":"Hi {{profile.nickname}}"}}]}"#)
        let id = try XCTUnwrap(created["id"] as? String, "\(created)")
        let started = try await api("POST", "/api/v1/campaigns/\(id)/start", "{}")
        XCTAssertEqual(started["audienceSize"] as? Int, 20_300)

        func planned() async -> Int { (try? await redis.send("HGET", Keys.campaignStats(id), "planned").string).flatMap { Int($0 ?? "") } ?? 0 }
        func delivered() -> Int { fakes.ledger.deliveries("wechat.template").count }
        func waitFor(_ what: String, seconds: Double = 60, _ condition: () async -> Bool) async throws {
            let deadline = Date().addingTimeInterval(seconds)
            while await !condition() {
                guard Date() < deadline else {
                    XCTFail("timed out waiting for \(what)")
                    throw CancellationError()
                }
                try await Task.sleep(for: .milliseconds(5))
            }
        }
        func restartGateway() throws {
            kill(gateway, SIGKILL)
            var status: Int32 = 0
            waitpid(gateway, &status, 0)
            gateway = try LocalProcess.spawn([binary], environment: env)
        }

        // 1. Killed while planning.
        try await waitFor("planning to start") { await planned() >= 2000 }
        let plannedAtKill = await planned()
        try restartGateway()
        // 2. Redis dies and comes back (AOF) mid-send.
        try await waitFor("5,000 deliveries", seconds: 90) { delivered() >= 5000 }
        redisServer.crash()
        try await Task.sleep(for: .milliseconds(300))
        try redisServer.start()
        // 3. Killed again mid-send.
        try await waitFor("12,000 deliveries", seconds: 90) { delivered() >= 12_000 }
        let deliveredAtKill = delivered()
        try restartGateway()

        var state = ""
        let end = Date().addingTimeInterval(120)
        while Date() < end {
            state = (try? await redis.send("HGET", Keys.campaign(id), "state").string ?? "") ?? ""
            if state == "completed" { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        let stats = try await redis.send("HGETALL", Keys.campaignStats(id)).dictionary
        XCTAssertEqual(state, "completed", "stats: \(stats)")
        let recipients = fakes.ledger.deliveries("wechat.template").map(\.to)
        let counts = Dictionary(grouping: recipients, by: { $0 }).mapValues(\.count)
        XCTAssertEqual(counts.count, 20_000, "every eligible recipient messaged")
        XCTAssertEqual(counts.values.filter { $0 > 1 }.count, 0, "nobody messaged twice")
        XCTAssertFalse(counts.keys.contains { Int($0.dropFirst(6))! >= 20_000 }, "nobody who unsubscribed")
        XCTAssertEqual(stats["sent"], "20000")
        XCTAssertEqual(stats["skipped"], "300")
        XCTAssertEqual(stats["skip:wechat_unsubscribed"], "300")
        XCTAssertEqual(stats["open"], "0")
        print("campaign crash test: killed at \(plannedAtKill) planned and at \(deliveredAtKill) delivered, Redis restarted; \(recipients.count) deliveries to \(counts.count) recipients; duplicate answers from the fake: \(fakes.ledger.calls("wechat.template") - recipients.count)")
        await fakes.stop()
    }
}
