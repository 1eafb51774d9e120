import GatewayCore
import RedisClient

/// A key one process holds for a while (`SET NX PX`), so that only it does a piece of work: planning
/// a campaign, enrolling a journey's audience, building the scores index. Given up only by its holder
/// (`lease_release` in Lua/leases.lua); one that is never given up expires.
public struct Lease: Sendable {
    let redis: RedisPool
    public let key: String
    public let owner: String

    public init(redis: RedisPool, key: String, owner: String) {
        self.redis = redis
        self.key = key
        self.owner = owner
    }

    /// Takes the lease when it is free; false when any process holds it.
    public func take(ms: Int64) async throws -> Bool {
        try await redis.send("SET", key, owner, "NX", "PX", String(ms)).string == "OK"
    }

    /// Takes the lease when it is free, or finds this process holds it already.
    public func takeOrHold(ms: Int64) async throws -> Bool {
        if try await take(ms: ms) { return true }
        return try await redis.send("GET", key).string == owner
    }

    /// Gives the lease up, only if this process holds it.
    public func release() async throws {
        _ = try await redis.fcall(StoreFunctions.library, "lease_release", keys: [key], args: [owner])
    }
}
