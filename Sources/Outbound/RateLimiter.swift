import GatewayCore
import Metrics
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

/// The shared limit, and how it reacts to the provider: a throttle answer (429, a throttle code)
/// halves the rate and pauses the key for Retry-After; the rate then climbs back by a quarter a
/// second while sends succeed; a spent quota suspends the key until the quota resets. All of it lives
/// in Redis next to the GCRA state, so every process slows down and resumes together.
public final class RateLimiter: Sendable {
    public enum Decision: Sendable, Equatable {
        /// Go; `factor` < 1 means the limit is running slowed down (report successes to recover).
        case allowed(factor: Double)
        /// Not before this many microseconds from now.
        case wait(microseconds: Int64)
        /// Suspended (quota spent) for this many more microseconds.
        case suspended(microseconds: Int64)

        public static let allowed = Decision.allowed(factor: 1)
    }

    public enum Signal: Sendable {
        /// The provider asked us to slow down; `retryAfterMs` when it said for how long.
        case throttled(retryAfterMs: Int64?)
        /// A send went through while the limit was slowed down.
        case succeeded
        /// A quota is spent until this wall-clock time (ms since the epoch).
        case quotaSpent(untilMs: Int64)
    }

    /// Slowest fraction of the spec's rate a throttled key falls to.
    static let minimumFactor = 0.05

    /// KEYS: GCRA key, state hash. ARGV: base interval µs, burst, cost, reserve-ahead µs.
    /// Returns {1, factor*1000} allowed, {0, µs} wait, {2, µs} suspended, {3, µs} reserved: the slot is
    /// taken and the caller sends after sleeping that long (so a caller's wake-up lateness costs no slot).
    static let script = RedisScript(
        name: "gcra",
        source: #"""
            local t = redis.call('TIME')
            local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
            local st = redis.call('HMGET', KEYS[2], 'factor', 'pauseUntil', 'suspendUntil')
            local factor = tonumber(st[1] or '1')
            local suspend = tonumber(st[3] or '0')
            if suspend > now then return { 2, suspend - now } end
            local pause = tonumber(st[2] or '0')
            if pause > now then return { 0, pause - now } end
            local interval = math.floor(tonumber(ARGV[1]) / factor)
            local burst, cost = tonumber(ARGV[2]), tonumber(ARGV[3])
            local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
            if tat < now then tat = now end
            local newTat = tat + interval * cost
            local allowAt = newTat - interval * burst
            if allowAt > now + tonumber(ARGV[4]) then return { 0, allowAt - now } end
            redis.call('SET', KEYS[1], string.format('%d', newTat), 'PX', math.ceil((newTat - now) / 1000) + 1000)
            if allowAt > now then return { 3, allowAt - now, math.floor(factor * 1000) } end
            return { 1, math.floor(factor * 1000) }
            """#)

    /// KEYS: state hash. ARGV: signal (throttle|success|quota), value (retry-after µs | suspend-until µs since epoch), min factor.
    static let react = RedisScript(
        name: "gcra_react",
        source: #"""
            local t = redis.call('TIME')
            local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
            local factor = tonumber(redis.call('HGET', KEYS[1], 'factor') or '1')
            if ARGV[1] == 'throttle' then
              factor = math.max(tonumber(ARGV[3]), factor / 2)
              local pause = now + math.max(tonumber(ARGV[2]), 1000000)
              redis.call('HSET', KEYS[1], 'factor', tostring(factor), 'pauseUntil', string.format('%d', pause), 'lastRaise', string.format('%d', now))
            elseif ARGV[1] == 'success' then
              if factor >= 1 then return '1' end
              local last = tonumber(redis.call('HGET', KEYS[1], 'lastRaise') or '0')
              if now - last < 1000000 then return tostring(factor) end
              factor = math.min(1, factor * 1.25)
              redis.call('HSET', KEYS[1], 'factor', tostring(factor), 'lastRaise', string.format('%d', now))
            elseif ARGV[1] == 'quota' then
              redis.call('HSET', KEYS[1], 'suspendUntil', ARGV[2])
            end
            redis.call('PEXPIRE', KEYS[1], 172800000)
            return tostring(factor)
            """#)

    private let redis: RedisPool

    public init(redis: RedisPool) { self.redis = redis }

    /// One attempt to take `cost` sends from the limit at `key`, now or not at all.
    public func attempt(_ key: String, limit: RateLimit, cost: Int = 1) async throws -> Decision {
        switch try await call(key, limit: limit, cost: cost, reserveAheadUs: 0) {
        case .reserved: return .wait(microseconds: 0)  // not reached with no reserve-ahead
        case .decided(let d): return d
        }
    }

    /// Waits until `cost` sends may go at `key`; throws `Suspended` when the key is suspended. A slot
    /// up to `reserveAheadMs` away is taken at once and slept towards, so waiting callers lose no slot
    /// to wake-up lateness and N processes together get the whole rate, not less.
    @discardableResult
    public func acquire(_ key: String, limit: RateLimit, cost: Int = 1, reserveAheadMs: Int64 = 250) async throws -> Double {
        while true {
            switch try await call(key, limit: limit, cost: cost, reserveAheadUs: reserveAheadMs * 1000) {
            case .reserved(let us, let factor):
                try await Task.sleep(for: .microseconds(us))
                return factor
            case .decided(.allowed(let factor)): return factor
            case .decided(.wait(let us)): try await Task.sleep(for: .microseconds(max(us - reserveAheadMs * 1000, 100)))
            case .decided(.suspended(let us)): throw Suspended(remainingMs: us / 1000)
            }
        }
    }

    private enum Outcome {
        case decided(Decision)
        case reserved(microseconds: Int64, factor: Double)
    }

    private func call(_ key: String, limit: RateLimit, cost: Int, reserveAheadUs: Int64) async throws -> Outcome {
        let r = try await redis.eval(
            Self.script, keys: [key, Keys.rateLimitState(key)],
            args: [String(limit.emissionIntervalUs), String(limit.burst), String(cost), String(reserveAheadUs)]
        ).array ?? []
        let value = Int64(r.count > 1 ? r[1].int ?? 0 : 0)
        switch r.first?.int {
        case 1: return .decided(.allowed(factor: Double(value) / 1000))
        case 2: return .decided(.suspended(microseconds: value))
        case 3: return .reserved(microseconds: value, factor: Double(r.count > 2 ? r[2].int ?? 1000 : 1000) / 1000)
        default: return .decided(.wait(microseconds: value))
        }
    }

    public struct Suspended: Error, Equatable {
        public let remainingMs: Int64
    }

    /// Tells the limit at `key` how the provider answered. Returns the new rate factor.
    @discardableResult
    public func report(_ signal: Signal, key: String, adapter: String) async throws -> Double {
        let (name, value): (String, Int64)
        switch signal {
        case .throttled(let ms):
            (name, value) = ("throttle", (ms ?? 0) * 1000)
            Counter(label: "scrm_adapter_throttled_total", dimensions: [("adapter", adapter)]).increment()
        case .succeeded: (name, value) = ("success", 0)
        case .quotaSpent(let untilMs):
            (name, value) = ("quota", untilMs * 1000)
            Counter(label: "scrm_adapter_quota_exhausted_total", dimensions: [("adapter", adapter)]).increment()
            Gauge(label: "scrm_adapter_suspended_until_seconds", dimensions: [("adapter", adapter)]).record(Double(untilMs) / 1000)
        }
        let factor = Double(try await redis.eval(Self.react, keys: [Keys.rateLimitState(key)], args: [name, String(value), String(Self.minimumFactor)]).string ?? "1") ?? 1
        Gauge(label: "scrm_adapter_rate_factor", dimensions: [("adapter", adapter)]).record(factor)
        return factor
    }

    /// When a spent quota comes back: WeChat's daily quotas at the next midnight in Beijing; anything
    /// else (an SMS balance, an ESP plan) is probed again after an hour.
    public static func quotaResetMs(channel: AdapterSpec.Channel, nowMs: Int64) -> Int64 {
        guard channel == .wechat else { return nowMs + 3_600_000 }
        let beijing = nowMs + 8 * 3_600_000
        return (beijing / 86_400_000 + 1) * 86_400_000 - 8 * 3_600_000
    }
}
