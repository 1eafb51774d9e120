import Foundation
import GatewayCore
import Outbound
import RedisClient
import Store
import TestSupport
import XCTest

final class RateLimiterTests: XCTestCase {
    func test_burstIsAllowedAtOnce_thenTheNextWaitsAboutOneInterval() async throws {
        let server = try RedisTestServer()
        let redis = RedisPool(server.configuration)
        defer { redis.shutdown() }
        let limiter = RateLimiter(redis: redis)
        let key = Keys.rateLimit(adapter: "sms-test", scope: "acct1")
        let limit = RateLimit(perSecond: 1, burst: 3)
        for i in 1...3 {
            let d = try await limiter.attempt(key, limit: limit)
            XCTAssertEqual(d, .allowed, "burst send \(i)")
        }
        guard case .wait(let us) = try await limiter.attempt(key, limit: limit) else { return XCTFail("the 4th send in the same second must wait") }
        XCTAssertTrue((900_000...1_000_000).contains(us), "wait about one interval at 1/s, got \(us) µs")
        let other = try await limiter.attempt(Keys.rateLimit(adapter: "sms-test", scope: "acct2"), limit: limit)
        XCTAssertEqual(other, .allowed, "another scope has its own budget")
    }

    func test_deniedAttemptsDoNotSpendTheBudget() async throws {
        let server = try RedisTestServer()
        let redis = RedisPool(server.configuration)
        defer { redis.shutdown() }
        let limiter = RateLimiter(redis: redis)
        let key = Keys.rateLimit(adapter: "tpl")
        let limit = RateLimit(perSecond: 2, burst: 1)
        let first = try await limiter.attempt(key, limit: limit)
        XCTAssertEqual(first, .allowed)
        var waits: [Int64] = []
        for _ in 0..<5 {
            if case .wait(let us) = try await limiter.attempt(key, limit: limit) { waits.append(us) }
        }
        XCTAssertEqual(waits.count, 5)
        XCTAssertTrue(waits.allSatisfy { $0 <= 500_000 }, "refusals must not push the next slot further out: \(waits)")
    }

    func test_twoProcesses_togetherStayWithinTheLimit() async throws {
        let server = try RedisTestServer()
        let pools = [RedisPool(server.configuration), RedisPool(server.configuration)]
        defer { pools.forEach { $0.shutdown() } }
        let key = Keys.rateLimit(adapter: "shared")
        // A burst of 5 lets a worker that the scheduler wakes up to 50 ms late still use its slot (a
        // starved test process would otherwise under-send); the limit then allows 100/s x 2 s + 5.
        let limit = RateLimit(perSecond: 100, burst: 5)
        // Connections open and the script loaded before the window starts, so warm-up is not counted.
        for pool in pools {
            for _ in 0..<4 { _ = try await RateLimiter(redis: pool).attempt(Keys.rateLimit(adapter: "warm-up"), limit: RateLimit(perSecond: 1000, burst: 10)) }
        }
        let start = ContinuousClock.now + .milliseconds(100)
        let deadline = start + .seconds(2)
        let sent = try await withThrowingTaskGroup(of: Int.self) { group in
            for pool in pools {
                let limiter = RateLimiter(redis: pool)
                for _ in 0..<4 {
                    group.addTask {
                        try await Task.sleep(until: start)
                        var n = 0
                        while true {
                            try await limiter.acquire(key, limit: limit)
                            guard ContinuousClock.now < deadline else { return n }
                            n += 1
                        }
                    }
                }
            }
            return try await group.reduce(0, +)
        }
        // Never faster: at most 5% over what the limit allows (205). Slower happens when the test Redis
        // (appendfsync always) stalls on a disk flush and slots pass unused; accuracy on a normal run is
        // what `scripts/bench throttle` measures with two real processes (-0.04%).
        XCTAssertLessThanOrEqual(sent, 215, "8 workers in 2 processes sent \(sent) in 2 s at 100/s, burst 5: over the limit")
        XCTAssertGreaterThanOrEqual(sent, 154, "8 workers in 2 processes sent only \(sent) of 205 allowed")
    }

    func test_throttleHalvesTheRateAndPauses_thenSuccessesRecoverGradually() async throws {
        let server = try RedisTestServer()
        let redis = RedisPool(server.configuration)
        defer { redis.shutdown() }
        let limiter = RateLimiter(redis: redis)
        let key = Keys.rateLimit(adapter: "sms")
        let limit = RateLimit(perSecond: 100, burst: 1)
        let first = try await limiter.attempt(key, limit: limit)
        XCTAssertEqual(first, .allowed)
        let factor = try await limiter.report(.throttled(retryAfterMs: 3000), key: key, adapter: "sms")
        XCTAssertEqual(factor, 0.5)
        guard case .wait(let us) = try await limiter.attempt(key, limit: limit) else { return XCTFail("paused after a throttle") }
        XCTAssertTrue((2_900_000...3_000_000).contains(us), "Retry-After 3 s honoured, waited \(us) µs")
        let again = try await limiter.report(.throttled(retryAfterMs: nil), key: key, adapter: "sms")
        XCTAssertEqual(again, 0.25)
        let tooSoon = try await limiter.report(.succeeded, key: key, adapter: "sms")
        XCTAssertEqual(tooSoon, 0.25, "recovery is at most one step a second")
        try await Task.sleep(for: .milliseconds(1050))
        let raised = try await limiter.report(.succeeded, key: key, adapter: "sms")
        XCTAssertEqual(raised, 0.3125, accuracy: 0.0001)
        for _ in 0..<40 { _ = try await limiter.report(.throttled(retryAfterMs: nil), key: key, adapter: "sms") }
        let floor = try await limiter.report(.succeeded, key: key, adapter: "sms")
        XCTAssertEqual(floor, 0.05, "never slower than 5% of the spec's rate")
    }

    func test_quotaSuspendsUntilReset() async throws {
        let server = try RedisTestServer()
        let redis = RedisPool(server.configuration)
        defer { redis.shutdown() }
        let limiter = RateLimiter(redis: redis)
        let key = Keys.rateLimit(adapter: "wechat-template", scope: "demo")
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try await limiter.report(.quotaSpent(untilMs: now + 60_000), key: key, adapter: "wechat-template")
        guard case .suspended(let us) = try await limiter.attempt(key, limit: RateLimit(perSecond: 10)) else { return XCTFail("suspended") }
        XCTAssertTrue((55_000_000...60_000_000).contains(us), "\(us)")
        do {
            try await limiter.acquire(key, limit: RateLimit(perSecond: 10))
            XCTFail("acquire must not wait out a suspension")
        } catch let s as RateLimiter.Suspended {
            XCTAssertGreaterThan(s.remainingMs, 55_000)
        }
        let other = try await limiter.attempt(Keys.rateLimit(adapter: "wechat-template", scope: "other"), limit: RateLimit(perSecond: 10))
        XCTAssertEqual(other, .allowed, "another account's quota is its own")
    }

    func test_quotaReset_isNextBeijingMidnightForWeChat() {
        // 2026-11-28 15:59:59 UTC = 23:59:59 in Beijing -> resets at 16:00:00 UTC.
        let now: Int64 = 1_795_881_599_000
        XCTAssertEqual(RateLimiter.quotaResetMs(channel: .wechat, nowMs: now), 1_795_881_600_000)
        XCTAssertEqual(RateLimiter.quotaResetMs(channel: .wechat, nowMs: 1_795_881_600_000), 1_795_881_600_000 + 86_400_000)
        XCTAssertEqual(RateLimiter.quotaResetMs(channel: .sms, nowMs: now), now + 3_600_000)
    }

    /// Provider failures in a row open the circuit for every process; after the open spell exactly one
    /// caller probes while the others wait; a failed probe doubles the spell (capped); an answer closes it.
    func test_circuit_opensOnFailures_probesOnce_backsOffAndCloses() async throws {
        let server = try RedisTestServer()
        let redis = RedisPool(server.configuration)
        defer { redis.shutdown() }
        let circuit = RateLimiter.Circuit(failures: 3, openMs: 300, maxOpenMs: 1000, probeHoldMs: 5000)
        let a = RateLimiter(redis: redis, circuit: circuit)
        let b = RateLimiter(redis: redis, circuit: circuit)  // another process
        let key = Keys.rateLimit(adapter: "twilio-sms")
        let limit = RateLimit(perSecond: 1000, burst: 100)

        let first = try await a.acquire(key, limit: limit)
        XCTAssertEqual(first, RateLimiter.Grant(), "a healthy provider: nothing to report")
        for _ in 0..<2 { try await a.report(.providerFailed(probe: false), key: key, adapter: "twilio-sms") }
        let failing = try await b.acquire(key, limit: limit)
        XCTAssertTrue(failing.failing && !failing.probe, "two failures: still closed, but outcomes are reported")
        try await a.report(.providerFailed(probe: false), key: key, adapter: "twilio-sms")
        guard case .circuitOpen(let us) = try await b.attempt(key, limit: limit) else { return XCTFail("open after 3 failures in a row") }
        XCTAssertTrue((200_000...300_000).contains(us), "\(us)")
        do {
            try await b.acquire(key, limit: limit)
            XCTFail("acquire must not wait out an open circuit")
        } catch let s as RateLimiter.Suspended {
            XCTAssertEqual(s.reason, .providerFailing)
        }

        try await Task.sleep(for: .milliseconds(320))
        let probe = try await a.acquire(key, limit: limit)
        XCTAssertTrue(probe.probe, "after the open spell one call probes")
        guard case .wait = try await b.attempt(key, limit: limit) else { return XCTFail("the others wait for the probe's answer") }
        try await a.report(.providerFailed(probe: true), key: key, adapter: "twilio-sms")
        guard case .circuitOpen(let again) = try await b.attempt(key, limit: limit) else { return XCTFail("a failed probe reopens") }
        XCTAssertTrue((500_000...600_000).contains(again), "twice as long: \(again)")
        for _ in 0..<5 {  // failed probes: 1.2 s would exceed the cap
            _ = try await redis.send("HSET", Keys.rateLimitState(key), "openUntil", "1")
            _ = try await redis.send("HDEL", Keys.rateLimitState(key), "probeUntil")
            try await a.report(.providerFailed(probe: true), key: key, adapter: "twilio-sms")
        }
        guard case .circuitOpen(let capped) = try await b.attempt(key, limit: limit) else { return XCTFail("still open") }
        XCTAssertTrue((900_000...1_000_000).contains(capped), "capped at maxOpenMs: \(capped)")

        _ = try await redis.send("HSET", Keys.rateLimitState(key), "openUntil", "1")
        let probe2 = try await b.acquire(key, limit: limit)
        XCTAssertTrue(probe2.probe)
        try await b.report(.succeeded, key: key, adapter: "twilio-sms")
        let closed = try await a.acquire(key, limit: limit)
        XCTAssertEqual(closed, RateLimiter.Grant(), "an answer closes the circuit and forgets the failures")
    }
}
