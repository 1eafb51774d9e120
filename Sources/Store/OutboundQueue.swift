import GatewayCore
import RedisClient

/// The outbound queues as one sender sees them: a stream per channel and lane
/// (`Keys.outboundStream`, on a cluster split into partitions: `StreamPartitions.outbound`), read in the consumer group `Keys.outboundGroup` under the sender's own
/// consumer name. Each sender keeps a liveness key while it runs; the pending entries of one whose key
/// is gone are taken over at once, and entries any sender held too long are taken over after the
/// idle time.
public struct OutboundQueue: Sendable {
    let redis: RedisPool
    /// This sender's consumer name in the group.
    public let consumer: String

    public init(redis: RedisPool, consumer: String) {
        self.redis = redis
        self.consumer = consumer
    }

    /// The group on `stream`, created from the stream's start (messages accepted before any sender
    /// ran are not skipped); an existing group is left as it is.
    public func ensureGroup(_ stream: String) async {
        _ = try? await redis.send("XGROUP", "CREATE", stream, Keys.outboundGroup, "0", "MKSTREAM")
    }

    /// Lists this sender among those that keep a liveness key (so that its key's absence means it died).
    public func register(now: Int64) async throws {
        _ = try await redis.send("HSET", Keys.sendersTracked, consumer, String(now))
    }

    /// Renews this sender's liveness key for `ms` (wall time: Redis expires it in real time).
    public func beat(ms: Int64) async throws {
        _ = try await redis.send("SET", Keys.senderAlive(consumer), "1", "PX", String(ms))
    }

    /// Whether a consumer is a sender that kept a liveness key and no longer does.
    public func isDead(_ name: String) async throws -> Bool {
        guard name != consumer else { return false }
        let r = try await redis.pipelineChecked([["HEXISTS", Keys.sendersTracked, name], ["EXISTS", Keys.senderAlive(name)]])
        return r[0].int == 1 && r[1].int == 0
    }

    /// New entries for this sender from the partitions of one queue, each with its message id: up to
    /// `count`, shared over the partitions, read in one pipeline (one round trip per master).
    public func read(_ partitions: [String], count: Int) async throws -> [(MessageStore.Entry, String)] {
        let each = String((count + partitions.count - 1) / partitions.count)
        let replies = try await redis.pipelineChecked(partitions.map { ["XREADGROUP", "GROUP", Keys.outboundGroup, consumer, "COUNT", each, "STREAMS", $0, ">"] })
        return zip(partitions, replies).flatMap { stream, r -> [(MessageStore.Entry, String)] in
            guard let streams = r.array, let first = streams.first?.array, first.count == 2 else { return [] }
            return Self.entries(first[1], stream: stream)
        }
    }

    /// The pending entries of dead senders on `stream` (up to 100 each), now this sender's (XCLAIM); a
    /// dead sender left with nothing pending is removed from the group.
    public func takeOverDead(_ stream: String) async -> [(MessageStore.Entry, String)] {
        guard let consumers = try? await redis.send("XINFO", "CONSUMERS", stream, Keys.outboundGroup).array else { return [] }
        var out = [(MessageStore.Entry, String)]()
        for c in consumers {
            let info = c.dictionary
            guard let name = info["name"], (try? await isDead(name)) == true else { continue }
            guard Int(info["pending"] ?? "0") ?? 0 > 0 else {
                _ = try? await redis.send("XGROUP", "DELCONSUMER", stream, Keys.outboundGroup, name)
                continue
            }
            guard let pending = try? await redis.send("XPENDING", stream, Keys.outboundGroup, "-", "+", "100", name).array else { continue }
            let ids = pending.compactMap { $0.array?.first?.string }
            guard !ids.isEmpty, let r = try? await redis.send(["XCLAIM", stream, Keys.outboundGroup, consumer, "0"] + ids) else { continue }
            out += Self.entries(r, stream: stream)
        }
        return out
    }

    /// Entries of `stream` any consumer has held longer than `idleMs` (up to 100), now this sender's
    /// (XAUTOCLAIM).
    public func takeOverIdle(_ stream: String, idleMs: Int64) async -> [(MessageStore.Entry, String)] {
        guard
            let r = try? await redis.send(["XAUTOCLAIM", stream, Keys.outboundGroup, consumer, String(idleMs), "0-0", "COUNT", "100"]),
            let parts = r.array, parts.count >= 2
        else { return [] }
        return Self.entries(parts[1], stream: stream)
    }

    /// An entry done with: acknowledged and deleted.
    public func ack(_ entry: MessageStore.Entry) async throws {
        _ = try await redis.pipelineChecked([["XACK", entry.stream, Keys.outboundGroup, entry.id], ["XDEL", entry.stream, entry.id]])
    }

    static func entries(_ value: RedisValue, stream: String) -> [(MessageStore.Entry, String)] {
        (value.array ?? []).compactMap { e in
            guard let parts = e.array, parts.count == 2, let entryId = parts[0].string else { return nil }
            let fields = parts[1].dictionary
            guard let id = fields["id"] else { return nil }
            return (MessageStore.Entry(stream: stream, id: entryId, reference: MessageStore.Reference(fields: fields)), id)
        }
    }
}
