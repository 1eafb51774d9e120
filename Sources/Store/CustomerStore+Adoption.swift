import GatewayCore
import RedisClient

/// Moving a deployment from a single Redis onto a cluster (README, "Moving a deployment to a
/// cluster"). The keys are carried over with `redis-cli --cluster import`: every customer key keeps
/// its name and slot, but the single Redis's indexes (`customers`, `tag:vip`, `fidx:all`, ...) are one
/// key each, which a cluster's sharded readers never look at. Each gateway adopts them at start.
extension CustomerStore {
    /// The single Redis's index keys, by pattern; on a cluster a sharded index key has a `{` in it.
    static let unshardedIndexPatterns = [
        Keys.customers, Keys.tag("*"), Keys.fieldIndex("*"), Keys.attributeIndex("*"), Keys.lastSeenIndex, Keys.scores, Keys.scoresMeta, Keys.scoresBuild,
    ]

    /// Indexes the customers listed in the unsharded `customers` set into their shards (`customer_adopt`,
    /// 1,000 per round), removing each round from that set, so that a restart goes on where it
    /// stopped; then deletes the unsharded index keys. Returns how many customers it adopted.
    func adoptCarriedOver() async throws -> Int {
        let carried = IndexShard.single.key(single: Keys.customers)
        guard try await redis.send("EXISTS", carried).int == 1 else { return 0 }
        var total = 0
        while true {
            let ids = try await redis.send("ZRANGE", carried, "0", "999").strings
            guard !ids.isEmpty else { break }
            let replies = try await redis.fcallAll(StoreFunctions.library, "customer_adopt", calls: shards.group(ids).map { shards.call($0, args: $0.ids) })
            try await appendEmitted(replies.flatMap { $0.array?.last?.strings ?? [] })
            _ = try await redis.send(["ZREM", carried] + ids)
            total += ids.count
        }
        for pattern in Self.unshardedIndexPatterns {
            // SCAN, not KEYS: a master with millions of keys is not blocked.
            for (endpoint, _) in try await redis.onEachMaster([["PING"]]) {
                var cursor = "0"
                repeat {
                    let page = try await redis.onNode(endpoint, [["SCAN", cursor, "MATCH", pattern, "COUNT", "1000"]])[0].array ?? []
                    guard page.count == 2 else { break }
                    cursor = page[0].string ?? "0"
                    let leftovers = page[1].strings.filter { !$0.contains("{") }
                    if !leftovers.isEmpty { _ = try await redis.pipelineChecked(leftovers.map { ["DEL", $0] }) }
                } while cursor != "0"
            }
        }
        return total
    }
}
