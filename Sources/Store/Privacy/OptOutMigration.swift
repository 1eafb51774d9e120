import GatewayCore
import RedisClient

extension CustomerStore {
    /// Moves opt-outs stored under the address itself (`optout:<channel>:<address>`, before the keyed
    /// hash) to their hashed key, once (`Keys.optOutFormat` marks it done): the one start-up task
    /// that walks the keyspace (SCAN, 1,000 keys a step). Returns how many moved.
    @discardableResult
    public func migrateOptOuts() async throws -> Int {
        if try await redis.send("GET", Keys.optOutFormat).string == "hashed" { return 0 }
        var cursor = "0"
        var moved = 0
        repeat {
            let r = try await redis.send("SCAN", cursor, "MATCH", "optout:*", "COUNT", "1000").array ?? []
            guard r.count == 2, let next = r[0].string else { break }
            cursor = next
            for key in r[1].strings {
                let parts = key.split(separator: ":", maxSplits: 2).map(String.init)
                guard parts.count == 3, parts[1] == "sms" || parts[1] == "email", parts[2].contains("@") || parts[2].hasPrefix("+") else { continue }
                guard let value = try await redis.send("GET", key).string else { continue }
                _ = try await redis.pipelineChecked([["SET", suppression.key(channel: parts[1], address: parts[2]), value, "NX"], ["DEL", key]])
                moved += 1
            }
        } while cursor != "0"
        _ = try await redis.send("SET", Keys.optOutFormat, "hashed")
        return moved
    }
}
