import GatewayCore
import GatewayCrypto
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
        try await readEach(redis, function) { (keys: keys($0), args: args) }
    }

    /// `readEach` with arguments of each shard's own.
    func readEach(_ redis: RedisPool, _ function: String, call: (IndexShard) -> (keys: [String], args: [String])) async throws -> [RedisValue] {
        let shards = layout.shards
        var replies = [RedisValue]()
        replies.reserveCapacity(shards.count)
        for start in stride(from: 0, to: shards.count, by: Self.readBatch) {
            replies += try await redis.fcallAll(StoreFunctions.library, function, calls: shards[start..<min(start + Self.readBatch, shards.count)].map(call))
        }
        return replies
    }

    /// Runs one plain command per shard (every shard on a cluster, in pipelines of 4,096 split by
    /// node), error replies thrown. Replies in shard order (`layout.shards`).
    func sendEach(_ redis: RedisPool, _ command: (IndexShard) -> [String]) async throws -> [RedisValue] {
        let shards = layout.shards
        var replies = [RedisValue]()
        replies.reserveCapacity(shards.count)
        for start in stride(from: 0, to: shards.count, by: Self.readBatch) {
            replies += try await redis.pipelineChecked(shards[start..<min(start + Self.readBatch, shards.count)].map(command))
        }
        return replies
    }

    /// Calls a sharded function for a customer, again for the survivor each time it answers
    /// `moved` (a merge redirect into another slot). Returns the id that answered and its reply.
    func callFollowingMerges(
        _ redis: RedisPool, _ function: String, _ id: String, keys: (String) -> [String] = { [Keys.customer($0)] }, args: (String) -> [String]
    ) async throws -> (id: String, reply: [RedisValue]) {
        var id = id
        for _ in 0..<16 {
            let r = try await redis.fcall(StoreFunctions.library, function, keys: keys(id), args: arguments(customer: id) + args(id)).array ?? []
            guard r.first?.string == "moved", let survivor = r.count > 1 ? r[1].string : nil else { return (id, r) }
            id = survivor
        }
        throw RedisError.reply(command: "FCALL \(function)", message: "customer \(id): merge redirects do not end")
    }

    /// These shards with the attribute schema as data: on a cluster a function cannot read
    /// Keys.attributeSchema from its slot, so a caller built without the config reads it here.
    func resolved(_ redis: RedisPool) async throws -> IndexShards {
        guard layout == .perSlot, schemaArgument == "*" else { return self }
        let schema = try await redis.send("HGETALL", Keys.attributeSchema).strings
        return IndexShards(layout: layout, schemaArgument: schema.joined(separator: ","))
    }

    private init(layout: IndexLayout, schemaArgument: String) {
        self.layout = layout
        self.schemaArgument = schemaArgument
    }

    /// The mark that an interaction was scored (7 days): in the customer's slot on a cluster
    /// (`score_apply` writes it with the customer), under its old name on a single Redis.
    func scoredMark(customer id: String, interaction: String) -> String {
        layout == .perSlot ? Keys.customerScored(id, interaction: interaction) : Keys.scoredInteraction(interaction)
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

    /// A cursor that is not a nextCursor a page gave.
    public struct InvalidCursor: Error {}

    /// One page of a set kept per shard (`set(shard)` names it; a tag, an audience snapshot);
    /// nextCursor nil at the end (a page may come back empty just before it). On a single Redis an
    /// SSCAN page; on a cluster the cursor is `<position>-<SSCAN cursor>`, walking the shards in
    /// `walk(at:)` order and skipping those whose set is empty (their sizes read a batch ahead).
    func scanPage(_ redis: RedisPool, _ set: (IndexShard) -> String, cursor: String, limit: Int) async throws -> (ids: [String], nextCursor: String?) {
        guard layout == .perSlot else {
            guard !cursor.isEmpty, cursor.allSatisfy({ $0.isASCII && $0.isNumber }) else { throw InvalidCursor() }
            let r = try await redis.send("SSCAN", set(.single), cursor, "COUNT", String(limit)).array ?? []
            guard r.count == 2, let next = r[0].string else { return ([], nil) }
            return (r[1].strings, next == "0" ? nil : next)
        }
        let parts = cursor.split(separator: "-", omittingEmptySubsequences: false)
        guard cursor == "0" || (parts.count == 2 && Int(parts[0]).map { (0..<HashSlot.count).contains($0) } == true && UInt64(parts[1]) != nil) else {
            throw InvalidCursor()
        }
        var position = parts.count == 2 ? Int(parts[0]) ?? 0 : 0
        var inner = parts.count == 2 ? String(parts[1]) : "0"
        var ids = [String]()
        // The sizes of the next shards in the walk, read a batch at a time as the page needs them.
        while position < HashSlot.count {
            let batch = Array(position..<min(position + Self.pageLookahead, HashSlot.count))
            let sizes = try await redis.pipelineChecked(batch.map { ["SCARD", set(Self.walk(at: $0))] }).map { $0.int ?? 0 }
            for (offset, at) in batch.enumerated() {
                if at != position { inner = "0" }
                position = at
                guard sizes[offset] > 0 else { continue }
                repeat {
                    let r = try await redis.send("SSCAN", set(Self.walk(at: at)), inner, "COUNT", String(limit)).array ?? []
                    guard r.count == 2, let next = r[0].string else { break }
                    ids += r[1].strings
                    inner = next
                } while inner != "0" && ids.count < limit
                if ids.count >= limit {
                    if inner != "0" { return (ids, "\(at)-\(inner)") }
                    // Done with this shard: the page ends here; nil only when nothing is left in the walk.
                    let rest = sizes[(offset + 1)...]
                    if rest.contains(where: { $0 > 0 }) || batch.last! + 1 < HashSlot.count { return (ids, "\(at + 1)-0") }
                    return (ids, nil)
                }
            }
            position = batch.last! + 1
            inner = "0"
        }
        return (ids, nil)
    }

    /// Shards a page reads the sizes of at once.
    static let pageLookahead = 512

    /// The shard at `position` of the walk pages follow: slots in bit-reversed order (0, 8192, 4096,
    /// 12288, 2048, ...), so that any run of positions spreads over the whole slot range. A campaign's
    /// chunks therefore queue recipients on every master at once, instead of one master's slots
    /// after another's.
    static func walk(at position: Int) -> IndexShard {
        var slot = 0, p = position
        for _ in 0..<14 {
            slot = (slot << 1) | (p & 1)
            p >>= 1
        }
        return IndexShard.everySlot[slot]
    }

    /// The shards whose set is not empty (the single shard on a single Redis).
    /// `sorted`: the sets are sorted sets (ZCARD).
    func holding(_ redis: RedisPool, sorted: Bool = false, _ set: (IndexShard) -> String) async throws -> [IndexShard] {
        guard layout == .perSlot else { return [.single] }
        return try await shardsHolding(redis, set, sorted: sorted, from: 0).map(\.0)
    }

    /// The shards (with their slots) whose set is not empty, from slot `from` on.
    private func shardsHolding(_ redis: RedisPool, _ set: (IndexShard) -> String, sorted: Bool = false, from: Int) async throws -> [(IndexShard, Int)] {
        let candidates = Array(IndexShard.everySlot[from...])
        var holding = [(IndexShard, Int)]()
        for start in stride(from: 0, to: candidates.count, by: Self.readBatch) {
            let batch = Array(candidates[start..<min(start + Self.readBatch, candidates.count)])
            let sizes = try await redis.pipelineChecked(batch.map { [sorted ? "ZCARD" : "SCARD", set($0)] })
            for (offset, (shard, size)) in zip(batch, sizes).enumerated() where (size.int ?? 0) > 0 { holding.append((shard, from + start + offset)) }
        }
        return holding
    }
}
