import FakeProviders
import Foundation
import GatewayCore
import Outbound
import RedisClient
import Store
import TestSupport
import XCTest

/// Two real gateway processes send a burst; one is killed with SIGKILL in the middle of it. The
/// survivor takes the dead one's pending entries over once its liveness key is gone (seconds, not
/// `claimIdleSeconds`), and settles the sends left in doubt by asking Twilio (its message list).
/// Counted at the fake provider: nobody got a message twice, every message was sent, none lost and
/// none dead-lettered.
final class SenderCrashTests: XCTestCase {

    func test_killDashNineMidBurst_theSurvivorTakesOverInSeconds_settlesByLookup_neverSendsTwice() async throws {
        let binary = try GatewayProcess.binary()
        let target = try CrashRedis()
        let redis = target.pool
        let fakes = try await ProviderFakes.start(twilioDelayMs: 15)

        // Adapters as shipped, but Twilio's rate raised so the burst is quick.
        let work = target.directory.appendingPathComponent("gateway")
        let adapters = try GatewayProcess.adapters(in: work, edits: ["twilio-sms.yaml": ("per_second: 1\n  burst: 1", "per_second: 5000\n  burst: 100")])
        let config = work.appendingPathComponent("gateway.yaml")
        try """
            server: { host: 127.0.0.1, port: "${CRASH_TEST_PORT}" }
            redis: { \(target.locator), connections: 4 }
            outbound:
              adaptersDir: \(adapters.path)
              channels: { sms: twilio-sms }
              adapters: []
              concurrency: 8
              claimIdleSeconds: 60
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
            let id = ULID.make(milliseconds: now)
            ids.append(id)
            _ = try await store.accept(OutboundMessage(
                id: id, channel: "sms", adapter: "twilio-sms", lane: .bulk, idempotencyKey: "crash-\(i)", customerId: nil,
                to: "+1415\(String(format: "%07d", i))", account: nil, template: nil, subject: nil, text: "message \(i)", html: nil, link: nil,
                variables: "{}", createdAt: now))
        }

        // Two gateways on the same Redis (each on its own port).
        env["CRASH_TEST_PORT"] = String(try LocalProcess.freePort())
        let first = try LocalProcess.spawn([binary], environment: env)
        env["CRASH_TEST_PORT"] = String(try LocalProcess.freePort())
        let second = try LocalProcess.spawn([binary], environment: env)
        defer { LocalProcess.terminate(second) }
        let deadline = Date().addingTimeInterval(30)
        while fakes.ledger.deliveries("twilio").count < 60, Date() < deadline { try await Task.sleep(for: .milliseconds(5)) }
        kill(first, SIGKILL)
        let killedAt = Date()
        var status: Int32 = 0
        waitpid(first, &status, 0)
        let atKill = fakes.ledger.deliveries("twilio").count
        XCTAssertLessThan(atKill, 400, "the kill came mid-burst")
        var sendingAtKill = 0
        for id in ids where try await store.get(id)?.state == .sending { sendingAtKill += 1 }

        // The dead process's pending entries: taken over once its liveness key (5 s) is gone.
        var takenOverAfter: Double?
        var states = [String: OutboundMessage]()
        let end = Date().addingTimeInterval(60)
        while Date() < end {
            if takenOverAfter == nil {
                var pendingWithDead = 0
                for stream in [OutboundMessage.Lane.bulk, .transactional].flatMap({ redis.streams.all(Keys.outboundStream(channel: "sms", lane: $0)) }) {
                    for c in (try? await redis.send("XINFO", "CONSUMERS", stream, Keys.outboundGroup).array) ?? [] {
                        let info = c.dictionary
                        if let name = info["name"], name.contains("-\(first)-") { pendingWithDead += Int(info["pending"] ?? "0") ?? 0 }
                    }
                }
                if pendingWithDead == 0 { takenOverAfter = Date().timeIntervalSince(killedAt) }
            }
            states = [:]
            for id in ids { states[id] = try await store.get(id) }
            if states.values.allSatisfy({ $0.state.isTerminal }), takenOverAfter != nil { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let finishedAfter = Date().timeIntervalSince(killedAt)
        XCTAssertLessThan(takenOverAfter ?? 99, 10, "the survivor took the dead sender's entries over within 10 s (claimIdleSeconds is 60)")
        XCTAssertLessThan(finishedAfter, 30, "and settled its sends in doubt soon after")
        let delivered = fakes.ledger.deliveries("twilio").map(\.to)
        XCTAssertEqual(delivered.count, Set(delivered).count, "no number got a message twice")
        let sent = states.values.filter { $0.state == .sent }
        XCTAssertEqual(sent.count, 400, "every message is sent: \(Dictionary(grouping: states.values, by: { "\($0.state.rawValue) \($0.reason ?? "")" }).mapValues(\.count))")
        XCTAssertEqual(Set(delivered).count, 400, "every number got its message")
        XCTAssertTrue(sent.allSatisfy { delivered.contains($0.to ?? "") }, "every message marked sent reached the provider")
        let letters = try await store.deadLetters(limit: 100)
        XCTAssertEqual(letters.count, 0, "nothing dead-lettered: the sends in doubt were settled by asking Twilio")
        let lookups = fakes.ledger.calls("twilio.messages.list")
        print("crash test: \(atKill) delivered at the kill, \(delivered.count) in all, \(sendingAtKill) in a provider call, taken over after \(String(format: "%.1f", takenOverAfter ?? -1)) s, all done after \(String(format: "%.1f", finishedAfter)) s, \(lookups) lookups")
        await fakes.stop()
    }
}
