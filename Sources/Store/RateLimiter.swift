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
/// second while sends succeed; a spent quota suspends the key until the quota resets. A provider
/// that fails `Circuit.failures` calls in a row (5xx, timeouts) opens the key's circuit: nothing goes
/// for `openMs`, then one probe call; a failed probe opens it again for twice as long (up to
/// `maxOpenMs`), any answer that is not a provider failure closes it. All of it lives in Redis next to
/// the GCRA state, so every process slows down, stops and resumes together.
public final class RateLimiter: Sendable {
    public enum Decision: Sendable, Equatable {
        /// Go; `factor` < 1 means the limit is running slowed down (report successes to recover).
        case allowed(factor: Double)
        /// Not before this many microseconds from now.
        case wait(microseconds: Int64)
        /// Suspended (quota spent) for this many more microseconds.
        case suspended(microseconds: Int64)
        /// The provider keeps failing: its circuit is open for this many more microseconds.
        case circuitOpen(microseconds: Int64)

        public static let allowed = Decision.allowed(factor: 1)
    }

    public enum Signal: Sendable {
        /// The provider asked us to slow down; `retryAfterMs` when it said for how long.
        case throttled(retryAfterMs: Int64?)
        /// A send went through while the limit was slowed down.
        case succeeded
        /// A quota is spent until this wall-clock time (ms since the epoch).
        case quotaSpent(untilMs: Int64)
        /// The provider failed (5xx, timeout); `probe` when this was the call that tested an open circuit.
        case providerFailed(probe: Bool)
    }

    /// When a failing provider is left alone (shared by every process through the state hash).
    public struct Circuit: Sendable, Equatable {
        /// Provider failures in a row that open the circuit.
        public var failures = 5
        /// How long it stays open the first time; each failed probe doubles it, up to `maxOpenMs`.
        public var openMs: Int64 = 2_000
        public var maxOpenMs: Int64 = 30_000
        /// A probe call's answer is awaited this long before another process may probe (unless the
        /// caller gives its call's own timeout).
        public var probeHoldMs: Int64 = 15_000

        public init(failures: Int = 5, openMs: Int64 = 2_000, maxOpenMs: Int64 = 30_000, probeHoldMs: Int64 = 15_000) {
            self.failures = max(1, failures)
            self.openMs = max(1, openMs)
            self.maxOpenMs = max(openMs, maxOpenMs)
            self.probeHoldMs = max(1, probeHoldMs)
        }
    }

    /// What `acquire` granted: the rate factor (< 1: running slowed down), whether the key has recent
    /// provider failures (report the outcome either way), and whether this call is the probe of an
    /// open circuit.
    public struct Grant: Sendable, Equatable {
        public var factor: Double
        public var failing: Bool
        public var probe: Bool

        public init(factor: Double = 1, failing: Bool = false, probe: Bool = false) {
            self.factor = factor
            self.failing = failing
            self.probe = probe
        }

        /// The outcome is worth telling the limit about.
        public var wantsReport: Bool { factor < 1 || failing || probe }
    }

    /// Slowest fraction of the spec's rate a throttled key falls to.
    static let minimumFactor = 0.05



    private let redis: RedisPool
    public let circuit: Circuit

    public init(redis: RedisPool, circuit: Circuit = Circuit()) {
        self.redis = redis
        self.circuit = circuit
    }

    /// How the provider has treated a limit (`Keys.rateLimitState`): its rate factor, until when it is
    /// paused or suspended, its provider failures in a row and until when its circuit is open
    /// (wall-clock ms; nil when not).
    public struct State: Sendable, Equatable {
        public let factor: Double
        public let pausedUntilMs: Int64?
        public let suspendedUntilMs: Int64?
        public let failures: Int
        public let circuitOpenUntilMs: Int64?
    }

    /// Each limit's state, nil for a limit never touched.
    public func states(_ keys: [String]) async throws -> [State?] {
        let replies = try await redis.pipelineChecked(
            keys.map { ["HMGET", Keys.rateLimitState($0), "factor", "pauseUntil", "suspendUntil", "failures", "openUntil"] })
        return replies.map { r in
            let f = (r.array ?? []).map(\.string)
            guard f.count == 5, f.contains(where: { $0 != nil }) else { return nil }
            // Stored in µs of wall-clock time.
            func ms(_ v: String?) -> Int64? { v.flatMap { Int64($0) }.flatMap { $0 > 0 ? $0 / 1000 : nil } }
            return State(
                factor: f[0].flatMap { Double($0) } ?? 1, pausedUntilMs: ms(f[1]), suspendedUntilMs: ms(f[2]), failures: f[3].flatMap { Int($0) } ?? 0,
                circuitOpenUntilMs: ms(f[4]))
        }
    }

    /// One attempt to take `cost` sends from the limit at `key`, now or not at all.
    public func attempt(_ key: String, limit: RateLimit, cost: Int = 1) async throws -> Decision {
        switch try await call(key, limit: limit, cost: cost, reserveAheadUs: 0, probeHoldMs: nil) {
        case .reserved: return .wait(microseconds: 0)  // not reached with no reserve-ahead
        case .decided(let d, _): return d
        }
    }

    /// Waits until `cost` sends may go at `key`; throws `Suspended` when the key is suspended or its
    /// circuit is open. A slot up to `reserveAheadMs` away is taken at once and slept towards, so
    /// waiting callers lose no slot to wake-up lateness and N processes together get the whole rate.
    @discardableResult
    /// `probeHoldMs`: how long a probe's answer may take (the call's timeout); the circuit's default if nil.
    public func acquire(_ key: String, limit: RateLimit, cost: Int = 1, reserveAheadMs: Int64 = 250, probeHoldMs: Int64? = nil) async throws -> Grant {
        while true {
            switch try await call(key, limit: limit, cost: cost, reserveAheadUs: reserveAheadMs * 1000, probeHoldMs: probeHoldMs) {
            case .reserved(let us, let grant):
                try await Task.sleep(for: .microseconds(us))
                return grant
            case .decided(.allowed, let grant): return grant
            case .decided(.wait(let us), _): try await Task.sleep(for: .microseconds(max(us - reserveAheadMs * 1000, 100)))
            case .decided(.suspended(let us), _): throw Suspended(remainingMs: us / 1000, reason: .quota)
            case .decided(.circuitOpen(let us), _): throw Suspended(remainingMs: us / 1000, reason: .providerFailing)
            }
        }
    }

    private enum Outcome {
        case decided(Decision, Grant)
        case reserved(microseconds: Int64, Grant)
    }

    private func call(_ key: String, limit: RateLimit, cost: Int, reserveAheadUs: Int64, probeHoldMs: Int64?) async throws -> Outcome {
        let hold = (probeHoldMs ?? circuit.probeHoldMs) * 1000
        let r = try await redis.fcall(
            StoreFunctions.library, "rate_limit_take", keys: [key, Keys.rateLimitState(key)],
            args: [String(limit.emissionIntervalUs), String(limit.burst), String(cost), String(reserveAheadUs), String(hold)]
        ).array ?? []
        func int(_ i: Int) -> Int { i < r.count ? r[i].int ?? 0 : 0 }
        let value = Int64(int(1))
        switch r.first?.int {
        case 1:
            let grant = Grant(factor: Double(value) / 1000, failing: int(2) == 1, probe: int(3) == 1)
            return .decided(.allowed(factor: grant.factor), grant)
        case 2: return .decided(.suspended(microseconds: value), Grant())
        case 3: return .reserved(microseconds: value, Grant(factor: Double(int(2)) / 1000, failing: int(3) == 1, probe: int(4) == 1))
        case 4: return .decided(.circuitOpen(microseconds: value), Grant())
        default: return .decided(.wait(microseconds: value), Grant())
        }
    }

    public struct Suspended: Error, Equatable {
        public enum Reason: String, Sendable { case quota, providerFailing = "provider_failing" }
        public let remainingMs: Int64
        public let reason: Reason

        public init(remainingMs: Int64, reason: Reason) {
            self.remainingMs = remainingMs
            self.reason = reason
        }
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
        case .providerFailed(let probe):
            (name, value) = ("failure", probe ? 1 : 0)
            Counter(label: "scrm_adapter_provider_failures_total", dimensions: [("adapter", adapter)]).increment()
        }
        let args = [name, String(value), String(Self.minimumFactor), String(circuit.failures), String(circuit.openMs), String(circuit.maxOpenMs)]
        let factor = Double(try await redis.fcall(StoreFunctions.library, "rate_limit_react", keys: [Keys.rateLimitState(key)], args: args).string ?? "1") ?? 1
        Gauge(label: "scrm_adapter_rate_factor", dimensions: [("adapter", adapter)]).record(factor)
        return factor
    }
}
