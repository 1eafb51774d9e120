import GatewayCore
import RedisClient

/// A CRM's request budget as the CRM counts it: at most `requests` calls in any rolling window of
/// `windowMs` (HubSpot: 100 per 10 s). Kept in Redis (a sorted set of call times on Redis's clock), so
/// every gateway process shares one budget. A call is counted a little longer than the window
/// (`marginMs`): the CRM stamps a call when it arrives, which can be later than when we sent it.
/// The CRM's own view wins when it differs: a 429, or `X-HubSpot-RateLimit-Remaining: 0` while our
/// window still has room (someone else spends the same budget), pauses every process.
public struct CRMBudget: Sendable {
    public struct Limit: Sendable, Equatable {
        public var requests: Int
        public var windowMs: Int64
        public init(requests: Int, windowMs: Int64) {
            self.requests = requests
            self.windowMs = windowMs
        }
    }

    let redis: RedisPool
    let adapter: String
    public let limit: Limit
    let marginMs: Int64

    public init(redis: RedisPool, adapter: String, limit: Limit, marginMs: Int64 = 250) {
        self.redis = redis
        self.adapter = adapter
        self.limit = limit
        self.marginMs = marginMs
    }

    /// Waits until a call may go, and counts it. Returns the call's slot, for `refund`.
    @discardableResult
    public func acquire() async throws -> String {
        let slot = String(UInt64.random(in: 0...UInt64.max))
        while true {
            let waitUs = try await redis.fcall(
                StoreFunctions.library, "crm_budget_take", keys: [Keys.crmBudget(adapter: adapter), Keys.crmPause(adapter: adapter)],
                args: [String(limit.requests), String((limit.windowMs + marginMs) * 1000), slot]
            ).int ?? 0
            if waitUs <= 0 { return slot }
            try await Task.sleep(for: .microseconds(waitUs))
        }
    }

    /// Gives back a slot taken for a call that was not made (there was nothing to send).
    public func refund(_ slot: String) async throws {
        _ = try await redis.send("ZREM", Keys.crmBudget(adapter: adapter), slot)
    }

    /// The CRM said to slow down: nobody calls before `ms` from now.
    public func pause(ms: Int64) async throws {
        _ = try await redis.fcall(StoreFunctions.library, "crm_budget_pause", keys: [Keys.crmPause(adapter: adapter)], args: [String(ms * 1000)])
    }

    /// The CRM's count of calls left in its window: 0 while ours has room means another client spends
    /// the budget too, so wait a whole window.
    public func observe(remaining: Int, intervalMs: Int64?) async throws {
        guard remaining <= 0 else { return }
        let used = try await used()
        if used < limit.requests { try await pause(ms: intervalMs ?? limit.windowMs) }
    }

    /// Calls counted in the current window.
    public func used() async throws -> Int {
        try await redis.fcall(StoreFunctions.library, "crm_budget_used", keys: [Keys.crmBudget(adapter: adapter)], args: [String((limit.windowMs + marginMs) * 1000)]).int ?? 0
    }



}
