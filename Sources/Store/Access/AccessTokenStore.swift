import GatewayCore
import RedisClient

/// The WeChat access tokens every gateway process shares (`Keys.accessToken`, per account), the
/// fenced lock one process fetches a new token under (`Keys.accessTokenLock`, its fence from
/// `Keys.accessTokenFence`), and the fetches counted per Beijing day against the daily budget.
/// `AccessTokenManager` (Outbound) decides when to read, lock and fetch.
public struct AccessTokenStore: Sendable {
    let redis: RedisPool

    public init(redis: RedisPool) { self.redis = redis }

    /// The shared token as stored: nil fields when there is none.
    public struct Shared: Sendable, Equatable {
        public let token: String?
        public let expiresAtMs: Int64?
        /// WeChat refused it: the next fetch asks for a new one (force refresh).
        public let stale: Bool
    }

    public func read(account: String) async throws -> Shared {
        let v = try await redis.send("HMGET", Keys.accessToken(account: account), "token", "expiresAt", "stale").array ?? []
        return Shared(
            token: v.first?.string, expiresAtMs: v.count > 1 ? v[1].string.flatMap { Int64($0) } : nil, stale: v.count > 2 && v[2].string == "1")
    }

    /// Marks `token` stale, only if it is still the stored one (a newer token from another process stays).
    public func markStale(account: String, token: String) async throws {
        _ = try await redis.fcall(StoreFunctions.library, "token_mark_stale", keys: [Keys.accessToken(account: account)], args: [token])
    }

    /// Takes the fetch lock for `ttlMs`; its fence when taken, nil when another process holds it.
    public func lock(account: String, ttlMs: Int64) async throws -> Int? {
        let fence = try await redis.send("INCR", Keys.accessTokenFence(account: account)).int ?? 0
        let got = try await redis.send("SET", Keys.accessTokenLock(account: account), String(fence), "NX", "PX", String(ttlMs))
        return got.string == "OK" ? fence : nil
    }

    /// Gives the lock up, only if `fence` still holds it.
    public func unlock(account: String, fence: Int) async throws {
        _ = try await redis.fcall(StoreFunctions.library, "token_release", keys: [Keys.accessTokenLock(account: account)], args: [String(fence)])
    }

    /// Stores a fetched token if `fence` still holds the lock (`token_store_if_holder`); false when the
    /// lock ran out and another process took it.
    public func storeIfHolder(account: String, token: String, expiresAtMs: Int64, fence: Int) async throws -> Bool {
        try await redis.fcall(
            StoreFunctions.library, "token_store_if_holder", keys: [Keys.accessToken(account: account), Keys.accessTokenLock(account: account)],
            args: [token, String(expiresAtMs), String(fence)]
        ).int == 1
    }

    /// A Douyin account's refresh token in use, when it expires, and `origin`: a digest of the configured
    /// token it descends from (renewals replace the token, not the origin). nil before the first refresh.
    public func refreshToken(account: String) async throws -> (token: String, expiresAtMs: Int64?, origin: String)? {
        let v = try await redis.send("HMGET", Keys.accessTokenRefresh(account: account), "token", "expiresAt", "origin").array ?? []
        guard let token = v.first?.string, !token.isEmpty else { return nil }
        return (token, v.count > 1 ? v[1].string.flatMap { Int64($0) } : nil, v.count > 2 ? v[2].string ?? "" : "")
    }

    /// Records the refresh token in use and its expiry, if `fence` still holds the fetch lock.
    public func storeRefreshToken(account: String, token: String, expiresAtMs: Int64, origin: String, fence: Int) async throws {
        guard try await redis.send("GET", Keys.accessTokenLock(account: account)).string == String(fence) else { return }
        _ = try await redis.send(
            "HSET", Keys.accessTokenRefresh(account: account), "token", token, "expiresAt", String(expiresAtMs), "origin", origin)
    }

    /// Fetches counted on `day` (Beijing) for `account`.
    public func fetches(account: String, day: Int64) async throws -> Int {
        try await redis.send("GET", Keys.accessTokenFetches(account: account, day: day)).string.flatMap { Int($0) } ?? 0
    }

    /// Counts one fetch on `day` (the counter lives two days); the count now.
    public func countFetch(account: String, day: Int64) async throws -> Int {
        let counter = Keys.accessTokenFetches(account: account, day: day)
        return try await redis.pipelineChecked([["INCR", counter], ["EXPIRE", counter, "172800"]]).first?.int ?? 0
    }
}
