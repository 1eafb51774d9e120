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

    public init(redis: RedisPool, stream: String, group: String, from start: String = "0") {
        self.redis = redis
        self.stream = stream
        self.group = group
        self.start = start
        consumer = "\(ProcessInfo.processInfo.hostName)-\(getpid())"
    }

    /// Runs until cancelled; `beforeBatch` runs before each read (e.g. reloading rules).
    public func run(beforeBatch: @Sendable () -> Void = {}, _ handle: @Sendable (_ id: String, _ fields: [String: String]) async throws -> Void) async {
        _ = try? await redis.send("XGROUP", "CREATE", stream, group, start, "MKSTREAM")
        var lastReclaim = ContinuousClock.now - .seconds(60)
        while !Task.isCancelled {
            beforeBatch()
            do {
                var raw = try await redis.send(["XREADGROUP", "GROUP", group, consumer, "COUNT", "200", "STREAMS", stream, ">"])
                    .array?.first?.array?.last?.array ?? []
                if ContinuousClock.now - lastReclaim > .seconds(30) {
                    lastReclaim = ContinuousClock.now
                    let claimed = try await redis.send(["XAUTOCLAIM", stream, group, consumer, "60000", "0-0", "COUNT", "200"])
                    if let parts = claimed.array, parts.count >= 2 { raw += parts[1].array ?? [] }
                }
                if raw.isEmpty {
                    try await Task.sleep(for: .milliseconds(100))
                    continue
                }
                for e in raw {
                    guard let parts = e.array, parts.count == 2, let id = parts[0].string else { continue }
                    try await handle(id, parts[1].dictionary)
                    _ = try await redis.send("XACK", stream, group, id)
                }
            } catch is CancellationError {
                return
            } catch {
                try? await Task.sleep(for: .milliseconds(500))  // Redis away: the entries stay pending
            }
        }
    }
}
