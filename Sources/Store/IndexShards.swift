import GatewayCore
import RedisClient

/// How the Store calls the sharded customer functions (customer_base's `sharded`): which shard holds
/// a customer's index entries on this Redis, and the attribute schema they get as data.
public struct IndexShards: Sendable {
    public let layout: IndexLayout
    /// `CustomerAttributes.indexSchema` as the functions read it, or `*`: read Keys.attributeSchema
    /// (what prepareIndexes wrote), for a caller without the config on a single Redis.
    let schemaArgument: String

    public init(redis: RedisPool, attributes: CustomerAttributes?) {
        layout = redis.isCluster ? .perSlot : .single
        schemaArgument = attributes.map { $0.indexSchema.flatMap { [$0.0, $0.1] }.joined(separator: ",") } ?? "*"
    }

    /// The two arguments a sharded function takes first, for a customer.
    func arguments(customer id: String) -> [String] { [layout.shard(customer: id).argument, schemaArgument] }

    /// Customer ids grouped by the shard holding them: one group on a single Redis, in the order given.
    func group(_ ids: [String]) -> [(shard: IndexShard, ids: [String])] {
        guard layout == .perSlot else { return ids.isEmpty ? [] : [(.single, ids)] }
        var order = [IndexShard]()
        var groups = [IndexShard: [String]]()
        for id in ids {
            let shard = layout.shard(customer: id)
            if groups[shard] == nil { order.append(shard) }
            groups[shard, default: []].append(id)
        }
        return order.map { ($0, groups[$0]!) }
    }

    /// A call of a sharded function on a group: routed by the first customer's hash.
    func call(_ group: (shard: IndexShard, ids: [String]), args: [String]) -> (keys: [String], args: [String]) {
        ([Keys.customer(group.ids[0])], [group.shard.argument, schemaArgument] + args)
    }

    /// Calls a read-only function once per shard: once on a single Redis; on a cluster for all 16,384
    /// shards, in pipelines of 4,096 calls, each split by node and sent to the masters in parallel.
    /// Replies in shard order (`layout.shards`).
    func readEach(_ redis: RedisPool, _ function: String, keys: (IndexShard) -> [String], args: [String] = []) async throws -> [RedisValue] {
        let shards = layout.shards
        var replies = [RedisValue]()
        replies.reserveCapacity(shards.count)
        for start in stride(from: 0, to: shards.count, by: Self.readBatch) {
            let calls = shards[start..<min(start + Self.readBatch, shards.count)].map { (keys: keys($0), args: args) }
            replies += try await redis.fcallAll(StoreFunctions.library, function, calls: calls)
        }
        return replies
    }

    /// The sizes of sets in every shard (`index_cards`), summed: the first set's total, the second's...
    func totalCards(_ redis: RedisPool, _ sets: [(base: String, name: String)]) async throws -> [Int] {
        guard !sets.isEmpty else { return [] }
        var totals = [Int](repeating: 0, count: sets.count)
        for reply in try await readEach(redis, "index_cards", keys: { shard in sets.map { shard.key($0.base, $0.name) } }) {
            for (i, n) in (reply.array ?? []).enumerated() where i < totals.count { totals[i] += n.int ?? 0 }
        }
        return totals
    }

    static let readBatch = 4_096
}
