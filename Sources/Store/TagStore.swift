import GatewayCore
import GatewayCrypto
import RedisClient

/// Tags as Redis sets both ways: `cust:{id}:tags` and `tag:{name}`, plus the registry `tags`.
public final class TagStore: Sendable {
    let redis: RedisPool
    let shards: IndexShards

    public init(redis: RedisPool) {
        self.redis = redis
        shards = IndexShards(redis: redis, attributes: nil)
    }

    /// Every tag with its number of customers, by name.
    /// On a cluster the counts are summed over every shard (one call per shard for all the names).
    public func all() async throws -> [(name: String, count: Int)] {
        let names = try await redis.send("SMEMBERS", Keys.tags).strings.sorted()
        let counts = try await shards.totalCards(redis, names.map { ("tag", $0) })
        return Array(zip(names, counts))
    }

    /// Registers a tag; false when it existed.
    public func create(_ name: String) async throws -> Bool { try await redis.send("SADD", Keys.tags, name).int == 1 }

    public func exists(_ name: String) async throws -> Bool { try await redis.send("SISMEMBER", Keys.tags, name).int == 1 }

    /// Which of these tag names are registered (one SMISMEMBER).
    public func existing(_ names: Set<String>) async throws -> Set<String> {
        guard !names.isEmpty else { return [] }
        let ordered = names.sorted()
        let flags = try await redis.send(["SMISMEMBER", Keys.tags] + ordered).array ?? []
        return Set(zip(ordered, flags).filter { $0.1.int == 1 }.map(\.0))
    }

    public func count(_ name: String) async throws -> Int { try await shards.totalCards(redis, [("tag", name)]).first ?? 0 }

    /// Removes the tag from every customer. Returns nil when the tag did not exist.
    /// Deletes a tag: from the registry at once, then from its customers 1,000 at a time (each chunk one
    /// short function call). Repeating an interrupted delete finishes it. Nil when there was no such tag.
    public func delete(_ name: String) async throws -> Int? {
        let existed = try await redis.send("SREM", Keys.tags, name).int == 1
        var removed = 0
        // Shard by shard (one on a single Redis); a shard's tag set holds customers of its slot only.
        for shard in try await shards.holding(redis, { $0.key("tag", name) }) {
            let key = shard.key("tag", name)
            while true {
                let ids = try await redis.send("SRANDMEMBER", key, String(Self.deleteChunk)).strings
                if ids.isEmpty { break }
                removed += try await redis.fcall(StoreFunctions.library, "tag_remove_members", keys: [key] + ids.map(Keys.customerTags), args: [name] + ids).int ?? 0
            }
        }
        return existed || removed > 0 ? removed : nil
    }

    static let deleteChunk = 1000

    public struct BulkResult: Sendable {
        public let changed: Int
        public let unknown: [String]
    }

    /// Adds or removes a tag on many customers in chunks of 1,000 ids: one script call per chunk on a
    /// single Redis; on a cluster one per shard the chunk touches, pipelined, then again for ids that
    /// were merged into customers of other shards.
    public func apply(_ name: String, add: Bool, customerIds: [String]) async throws -> BulkResult {
        if add { try await redis.send("SADD", Keys.tags, name) }
        var changed = 0
        var unknown = [String]()
        var emitted = [String]()
        var start = 0
        repeat {
            var chunk = Array(customerIds[start..<min(start + 1000, customerIds.count)])
            for _ in 0..<16 where !chunk.isEmpty {
                let replies = try await redis.fcallAll(
                    StoreFunctions.library, "customer_tag", calls: shards.group(chunk).map { shards.call($0, args: [add ? "add" : "remove", name] + $0.ids) })
                chunk = []
                for r in replies.map({ $0.array ?? [] }) {
                    changed += r.first?.int ?? 0
                    if r.count > 1 { unknown += r[1].strings }
                    if r.count > 2 { chunk += stride(from: 1, to: r[2].strings.count, by: 2).map { r[2].strings[$0] } }
                    emitted += r.last?.strings ?? []
                }
            }
            start += 1000
        } while start < customerIds.count
        if !emitted.isEmpty { try await CustomerStore.appendEmitted(emitted, redis: redis) }
        return BulkResult(changed: changed, unknown: unknown)
    }

    /// A cursor that is not a nextCursor this store gave.
    public typealias InvalidCursor = IndexShards.InvalidCursor

    /// One page of a tag's customers; nextCursor nil at the end (`IndexShards.scanPage`).
    public func customers(_ name: String, cursor: String, limit: Int) async throws -> (ids: [String], nextCursor: String?) {
        try await shards.scanPage(redis, { $0.key("tag", name) }, cursor: cursor, limit: limit)
    }
}
