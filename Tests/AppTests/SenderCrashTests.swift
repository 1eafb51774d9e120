import FakeProviders
import Foundation
import GatewayCore
import Outbound
import RedisClient
import TestSupport
import XCTest

/// A real gateway process is killed with SIGKILL in the middle of a burst of sends; a second one
/// takes over. Counted at the fake provider: nobody got a message twice, and every message ended
/// either sent or dead-lettered as `outcome_unknown` (the few in flight at the kill), none lost.
final class SenderCrashTests: XCTestCase {

    func test_killDashNineMidBurst_neverSendsTwice_andLosesNothing() async throws {
        let binary = try GatewayProcess.binary()
        let redisServer = try RedisTestServer()
        let redis = RedisPool(redisServer.configuration)
        defer { redis.shutdown() }
        let fakes = try await ProviderFakes.start(twilioDelayMs: 15)

        // Adapters as shipped, but Twilio's rate raised so the burst is quick.
        let work = redisServer.directory.appendingPathComponent("gateway")
        let adapters = try GatewayProcess.adapters(in: work, edits: ["twilio-sms.yaml": ("per_second: 1\n  burst: 1", "per_second: 5000\n  burst: 100")])
        let port = try LocalProcess.freePort()
        let config = work.appendingPathComponent("gateway.yaml")
        try """
            server: { host: 127.0.0.1, port: \(port) }
            redis: { url: "\(redisServer.url)", connections: 4 }
            outbound:
              adaptersDir: \(adapters.path)
              channels: { sms: twilio-sms }
              adapters: []
              concurrency: 8
              claimIdleSeconds: 2
            \(GatewayProcess.privacyYAML)
            accounts:
              - { id: demo, platform: wechat, appId: wxcrash000000001, token: crashtoken, mode: plain }
            """.write(to: config, atomically: true, encoding: .utf8)
        var env = fakes.environment
        env["SCRM_CONFIG"] = config.path
        env["SCRM_LOG_LEVEL"] = "error"

        // 400 messages queued, each to its own number.
        let store = MessageStore(redis: redis)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var ids = [String]()
        for i in 0..<400 {
            let id = CustomerID.make(milliseconds: now)
            ids.append(id)
            _ = try await store.accept(OutboundMessage(
                id: id, channel: "sms", adapter: "twilio-sms", lane: .bulk, idempotencyKey: "crash-\(i)", customerId: nil,
                to: "+1415\(String(format: "%07d", i))", account: nil, template: nil, subject: nil, text: "message \(i)", html: nil, link: nil,
                variables: "{}", createdAt: now))
        }

        let first = try LocalProcess.spawn([binary], environment: env)
        let deadline = Date().addingTimeInterval(30)
        while fakes.ledger.deliveries("twilio").count < 60, Date() < deadline { try await Task.sleep(for: .milliseconds(5)) }
        kill(first, SIGKILL)
        var status: Int32 = 0
        waitpid(first, &status, 0)
        let atKill = fakes.ledger.deliveries("twilio").count
        XCTAssertLessThan(atKill, 400, "the kill came mid-burst")

        let second = try LocalProcess.spawn([binary], environment: env)
        defer { LocalProcess.terminate(second) }
        var states = [String: OutboundMessage]()
        let end = Date().addingTimeInterval(60)
        while Date() < end {
            states = [:]
            for id in ids { states[id] = try await store.get(id) }
            if states.values.allSatisfy({ $0.state.isTerminal }) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let delivered = fakes.ledger.deliveries("twilio").map(\.to)
        XCTAssertEqual(delivered.count, Set(delivered).count, "no number got a message twice")
        let sent = states.values.filter { $0.state == .sent }
        let unknown = states.values.filter { $0.state == .failed && $0.reason == "outcome_unknown" }
        XCTAssertEqual(sent.count + unknown.count, 400, "every message is sent or visibly in doubt: \(Dictionary(grouping: states.values, by: { "\($0.state.rawValue) \($0.reason ?? "")" }).mapValues(\.count))")
        XCTAssertLessThanOrEqual(unknown.count, 8, "only the sends in flight at the kill (concurrency 8) can be in doubt")
        XCTAssertTrue(sent.allSatisfy { delivered.contains($0.to ?? "") }, "every message marked sent reached the provider")
        let letters = try await store.deadLetters(limit: 100)
        XCTAssertEqual(Set(letters.filter { $0.reason == "outcome_unknown" }.map(\.messageId)), Set(unknown.map(\.id)), "each one is in the dead-letter stream")
        print("crash test: \(atKill) delivered at the kill, \(delivered.count) in all, \(unknown.count) in doubt")
        await fakes.stop()
    }
}
