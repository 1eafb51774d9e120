import Foundation
import GatewayCore
import RedisClient

/// One consumer of a consumer group on a stream (created at `start`; from "0", history is read
/// once): reads batches, hands each entry to a handler, acknowledges it after the handler
/// returns, and takes over entries another consumer left pending for a minute (a stopped process).
/// A handler that throws leaves its entry pending, to be read again.
public struct StreamGroupReader: Sendable {
    let redis: RedisPool
    let stream: String
    let group: String
    let consumer: String
    /// Where a new group starts: "0" (the whole history) or "$" (what comes after).
    let start: String

    public init(redis: RedisPool, stream: String, group: String, from start: String = "0", consumer: String? = nil) {
        self.redis = redis
        self.stream = stream
        self.group = group
        self.start = start
        self.consumer = consumer ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())"
    }

    /// Creates the group at `start` (an existing group is left as it is).
    public func createGroup() async {
        _ = try? await redis.send("XGROUP", "CREATE", stream, group, start, "MKSTREAM")
    }

    /// Up to `count` new entries for this consumer, and with `reclaim` also entries another consumer
    /// has left pending for a minute (now this consumer's).
    public func read(count: Int, reclaim: Bool) async throws -> [(id: String, fields: [String: String])] {
        var raw = try await redis.send(["XREADGROUP", "GROUP", group, consumer, "COUNT", String(count), "STREAMS", stream, ">"])
            .array?.first?.array?.last?.array ?? []
        if reclaim {
            let claimed = try await redis.send(["XAUTOCLAIM", stream, group, consumer, "60000", "0-0", "COUNT", String(count)])
            if let parts = claimed.array, parts.count >= 2 { raw += parts[1].array ?? [] }
        }
        return raw.compactMap { e in
            guard let parts = e.array, parts.count == 2, let id = parts[0].string else { return nil }
            return (id, parts[1].dictionary)
        }
    }

    /// Acknowledges entries (handled: not read again).
    public func ack(_ ids: [String]) async throws {
        guard !ids.isEmpty else { return }
        _ = try await redis.send(["XACK", stream, group] + ids)
    }

    /// Runs until cancelled; `beforeBatch` runs before each read (e.g. reloading rules).
    public func run(beforeBatch: @Sendable () -> Void = {}, _ handle: @Sendable (_ id: String, _ fields: [String: String]) async throws -> Void) async {
        await createGroup()
        var lastReclaim = ContinuousClock.now - .seconds(60)
        while !Task.isCancelled {
            beforeBatch()
            do {
                let reclaim = ContinuousClock.now - lastReclaim > .seconds(30)
                if reclaim { lastReclaim = ContinuousClock.now }
                let entries = try await read(count: 200, reclaim: reclaim)
                if entries.isEmpty {
                    try await Task.sleep(for: .milliseconds(100))
                    continue
                }
                for e in entries {
                    try await handle(e.id, e.fields)
                    try await ack([e.id])
                }
            } catch is CancellationError {
                return
            } catch {
                try? await Task.sleep(for: .milliseconds(500))  // Redis away: the entries stay pending
            }
        }
    }
}
