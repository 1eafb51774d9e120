import GatewayCore
import Outbound
import RedisClient
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
}
