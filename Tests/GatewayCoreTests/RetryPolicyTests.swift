import GatewayCore
import XCTest

/// The one backoff (sends and the CRM queue): doubling from the base up to the cap, equal jitter.
final class RetryPolicyTests: XCTestCase {
    func test_delay_doublesUpToTheCap_withHalfOfItRandom() {
        let p = RetryPolicy(baseMs: 2_000, capMs: 60_000)
        XCTAssertEqual((1...7).map { p.delay(afterAttempts: $0, random: 1) }, [2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000])
        XCTAssertEqual((1...3).map { p.delay(afterAttempts: $0, random: 0) }, [1_000, 2_000, 4_000], "at least half of the backoff")
        XCTAssertEqual(p.delay(afterAttempts: 1_000, random: 1), 60_000, "a huge attempt count stays at the cap")
        XCTAssertEqual(p.nextAttempt(attempts: 2, createdAt: 0, now: 10_000, random: 1), 14_000)
        XCTAssertEqual(p.nextAttempt(attempts: 2, createdAt: 0, now: 10_000, notBefore: 50_000, random: 1), 50_000, "Retry-After wins when later")
        XCTAssertNil(RetryPolicy(baseMs: 2_000, capMs: 60_000, maxAgeMs: 5_000).nextAttempt(attempts: 3, createdAt: 0, now: 1_000, random: 1), "past the maximum age")
    }
}
