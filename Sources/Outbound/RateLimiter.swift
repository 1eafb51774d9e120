import GatewayCore
import RedisClient

/// A rate limit shared by every gateway process: GCRA in one Lua script on Redis's clock, so N
/// processes together stay within `perSecond` (with up to `burst` sends at once after a quiet spell).
public struct RateLimit: Sendable, Equatable {
    public var perSecond: Double
    public var burst: Int

    public init(perSecond: Double, burst: Int = 1) {
        self.perSecond = perSecond
        self.burst = max(1, burst)
    }

    /// Microseconds between sends at the steady rate.
    var emissionIntervalUs: Int64 { Int64((1_000_000 / perSecond).rounded()) }
}

public final class RateLimiter: Sendable {
    public enum Decision: Sendable, Equatable {
        case allowed
        /// Not before this many microseconds from now.
        case wait(microseconds: Int64)
    }

    /// GCRA. KEYS[1] holds the theoretical arrival time (µs, Redis clock). ARGV: emission interval µs,
    /// burst, cost. Returns {1, 0} when allowed, else {0, µs to wait}.
    static let script = RedisScript(
        name: "gcra",
        source: #"""
            local t = redis.call('TIME')
            local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
            local interval, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
            local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
            if tat < now then tat = now end
            local newTat = tat + interval * cost
            local allowAt = newTat - interval * burst
            if allowAt > now then return { 0, allowAt - now } end
            redis.call('SET', KEYS[1], string.format('%d', newTat), 'PX', math.ceil((newTat - now) / 1000) + 1000)
            return { 1, 0 }
            """#)

    private let redis: RedisPool

    public init(redis: RedisPool) { self.redis = redis }

    /// One attempt to take `cost` sends from the limit at `key`.
    public func attempt(_ key: String, limit: RateLimit, cost: Int = 1) async throws -> Decision {
        let r = try await redis.eval(Self.script, keys: [key], args: [String(limit.emissionIntervalUs), String(limit.burst), String(cost)]).array ?? []
        if r.first?.int == 1 { return .allowed }
        return .wait(microseconds: Int64(r.count > 1 ? r[1].int ?? 0 : 0))
    }

    /// Waits until `cost` sends may go at `key`.
    public func acquire(_ key: String, limit: RateLimit, cost: Int = 1) async throws {
        while true {
            switch try await attempt(key, limit: limit, cost: cost) {
            case .allowed: return
            case .wait(let us): try await Task.sleep(for: .microseconds(max(us, 100)))
            }
        }
    }
}
