import ArgumentParser
import Foundation
import GatewayCore
import Outbound
import RedisClient
import Store

/// One process's share of a shared-rate-limit run: `workers` callers acquire from one Redis rate limit
/// as fast as it lets them, between `startAt` and `startAt + seconds`, and count the sends. Several
/// processes started with the same `startAt` together should get the configured rate, no more.
struct Throttle: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Sends a shared Redis rate limit allows, from this process.")

    @Option var redis: String
    @Option var rate = 500.0
    @Option var burst = 1
    @Option var seconds = 10.0
    @Option var workers = 16
    @Option(help: "Start time, ms since the epoch (same for every process of a run).") var startAt: Int64
    @Option var key = "bench"

    func run() async throws {
        let pool = RedisPool(try RedisConfiguration(url: redis, connections: 2))
        defer { pool.shutdown() }
        let limiter = RateLimiter(redis: pool)
        let limit = RateLimit(perSecond: rate, burst: burst)
        let rlKey = Keys.rateLimit(adapter: key)
        let endAt = startAt + Int64(seconds * 1000)
        func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
        if startAt > now() { try await Task.sleep(for: .milliseconds(startAt - now())) }
        let sent = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<workers {
                group.addTask {
                    var n = 0
                    while true {
                        try await limiter.acquire(rlKey, limit: limit)
                        let t = now()
                        if t >= endAt { return n }
                        if t >= startAt { n += 1 }
                    }
                }
            }
            return try await group.reduce(0, +)
        }
        print("RESULT sends=\(sent) seconds=\(seconds)")
    }
}
