import Foundation
import GatewayCore
import RedisClient
import Synchronization

/// What the dashboard draws: per hour, callbacks stored by account and type, followers gained and
/// lost, and messages sent, delivered and failed by channel. Counting is in memory and free on the
/// hot paths (a webhook, a send); every process adds its counts to the hour's hash in Redis every few
/// seconds (one pipeline), so the numbers are the sum over all gateways. They are statistics, not
/// records: a process killed between two flushes loses at most those seconds of counts (the
/// messages and callbacks themselves are kept as always). Hours are kept for `retentionHours`.
public final class ActivityStats: Sendable {
    let redis: RedisPool
    let retentionHours: Int
    private let pending = Mutex<[Int64: [String: Int]]>([:])

    public static let hourMs: Int64 = 3_600_000

    public init(redis: RedisPool, retentionHours: Int = 8 * 24) {
        self.redis = redis
        self.retentionHours = retentionHours
    }

    /// A callback stored for `account` (its interaction type: `message.text`, `event.subscribe`,
    /// `event.add_external_contact`...): a follow or an unfollow counts as such too.
    public func inbound(account: String, type: String, atMs: Int64) {
        add("in|\(account)|\(type)", atMs: atMs)
        switch type.split(separator: ".").last.map(String.init) ?? type {
        case "subscribe", "add_external_contact", "add_half_external_contact": add("follow|\(account)|gained", atMs: atMs)
        case "unsubscribe", "del_external_contact", "del_follow_user": add("follow|\(account)|lost", atMs: atMs)
        default: break
        }
    }

    /// A message's outcome on its channel: `sent`, `delivered` or `failed`.
    public func outbound(channel: String, result: String, atMs: Int64, count: Int = 1) { add("out|\(channel)|\(result)", atMs: atMs, by: count) }

    func add(_ field: String, atMs: Int64, by n: Int = 1) {
        let hour = atMs / Self.hourMs
        pending.withLock { $0[hour, default: [:]][field, default: 0] += n }
    }

    /// Adds what was counted since the last flush to Redis. On a Redis failure the counts are kept for the next.
    public func flush() async throws {
        let batch = pending.withLock { p -> [Int64: [String: Int]] in
            let taken = p
            p = [:]
            return taken
        }
        guard !batch.isEmpty else { return }
        var commands = [[String]]()
        for (hour, fields) in batch {
            let key = Keys.activityHour(hour)
            for (field, n) in fields { commands.append(["HINCRBY", key, field, String(n)]) }
            commands.append(["PEXPIRE", key, String(Int64(retentionHours) * Self.hourMs)])
        }
        do {
            _ = try await redis.pipelineChecked(commands)
        } catch {
            pending.withLock { p in
                for (hour, fields) in batch { for (field, n) in fields { p[hour, default: [:]][field, default: 0] += n } }
            }
            throw error
        }
    }

    /// Flushes every `interval` until cancelled, then once more.
    public func run(every interval: Duration = .seconds(2)) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            try? await flush()
        }
        try? await flush()
    }

    /// One hour's counts: `in|account|type`, `follow|account|gained|lost`, `out|channel|result`.
    public struct Hour: Sendable {
        public let startMs: Int64
        public let counts: [String: Int]
    }

    /// The last `hours` hours up to the one holding `nowMs`, oldest first.
    public func read(hours: Int, nowMs: Int64) async throws -> [Hour] {
        let last = nowMs / Self.hourMs
        let range = (last - Int64(hours) + 1)...last
        let replies = try await redis.pipelineChecked(range.map { ["HGETALL", Keys.activityHour($0)] })
        return zip(range, replies).map { hour, reply in
            Hour(startMs: hour * Self.hourMs, counts: reply.dictionary.compactMapValues { Int($0) })
        }
    }
}
