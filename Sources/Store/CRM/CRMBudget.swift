import Foundation
import GatewayCore
import RedisClient

/// A CRM's request budget as the CRM counts it: at most `requests` calls in any rolling window of
/// `windowMs` (HubSpot: 100 per 10 s). Kept in Redis (a sorted set of call times on Redis's clock), so
/// every gateway process shares one budget. A call is counted a little longer than the window
/// (`marginMs`): the CRM stamps a call when it arrives, which can be later than when we sent it.
/// The CRM's own view wins when it differs: a 429, or `X-HubSpot-RateLimit-Remaining: 0` while our
/// window still has room (someone else spends the same budget), pauses every process.
/// A CRM may also cap the calls on the wire at once (Marketo: 10) and the calls per day (Marketo's
/// daily quota, reset at midnight in its time zone): both are counted in Redis too, and a spent daily
/// quota pauses every process until the reset.
public struct CRMBudget: Sendable {
    public struct Limit: Sendable, Equatable {
        public var requests: Int
        public var windowMs: Int64
        /// Calls on the wire at once, across every process; nil = no cap.
        public var concurrent: Int?
        /// Calls per day; nil = no quota.
        public var daily: Int?
        /// Where the daily quota's day begins and ends.
        public var dailyTimeZone = TimeZone(identifier: "UTC")!
        public init(requests: Int, windowMs: Int64, concurrent: Int? = nil, daily: Int? = nil) {
            self.requests = requests
            self.windowMs = windowMs
            self.concurrent = concurrent
            self.daily = daily
        }
    }

    /// A call's place in the budget, given back by `release` after the call or by `refund` when no call was made.
    public struct Slot: Sendable {
        let member: String
        let dailyKey: String?
    }

    /// How long a call counts as on the wire at most (a process that died mid-call frees its place then).
    static let callLeaseMs: Int64 = 60_000

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

    /// Waits until a call may go, and counts it. Returns the call's slot, for `release` and `refund`.
    @discardableResult
    public func acquire() async throws -> Slot {
        let member = String(UInt64.random(in: 0...UInt64.max))
        while true {
            var keys = [Keys.crmBudget(adapter: adapter), Keys.crmPause(adapter: adapter)]
            var args = [String(limit.requests), String((limit.windowMs + marginMs) * 1000), member]
            var dailyKey: String?
            if limit.concurrent != nil || limit.daily != nil {
                let day = Self.quotaDay(Date(), in: limit.dailyTimeZone)
                dailyKey = Keys.crmDaily(adapter: adapter, day: day.key)
                keys += [Keys.crmCalls(adapter: adapter), dailyKey!]
                args += [String(limit.concurrent ?? 0), String(Self.callLeaseMs * 1000), String(limit.daily ?? 0), String(day.untilResetMs * 1000)]
            }
            let waitUs = try await redis.fcall(StoreFunctions.library, "crm_budget_take", keys: keys, args: args).int ?? 0
            if waitUs <= 0 { return Slot(member: member, dailyKey: limit.daily == nil ? nil : dailyKey) }
            try await Task.sleep(for: .microseconds(waitUs))
        }
    }

    /// The call goes now: it counts in the window from now, not from when its slot was taken (a batch
    /// can take a while to prepare, and the CRM counts the call when it arrives).
    public func stamp(_ slot: Slot) async throws {
        _ = try await redis.fcall(StoreFunctions.library, "crm_budget_stamp", keys: [Keys.crmBudget(adapter: adapter)], args: [slot.member])
    }

    /// The call is over: its place on the wire is free.
    public func release(_ slot: Slot) async throws {
        guard limit.concurrent != nil else { return }
        _ = try await redis.send("ZREM", Keys.crmCalls(adapter: adapter), slot.member)
    }

    /// Gives back a slot taken for a call that was not made (there was nothing to send).
    public func refund(_ slot: Slot) async throws {
        var commands = [["ZREM", Keys.crmBudget(adapter: adapter), slot.member]]
        if limit.concurrent != nil { commands.append(["ZREM", Keys.crmCalls(adapter: adapter), slot.member]) }
        if let key = slot.dailyKey { commands.append(["DECR", key]) }
        _ = try await redis.pipelineChecked(commands)
    }

    /// The quota day `date` falls in (yyyyMMdd in `zone`) and the ms until the next one begins.
    public static func quotaDay(_ date: Date, in zone: TimeZone) -> (key: String, untilResetMs: Int64, resetsAt: Date) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let start = calendar.startOfDay(for: date)
        let next = calendar.date(byAdding: .day, value: 1, to: start) ?? date.addingTimeInterval(86_400)
        let c = calendar.dateComponents([.year, .month, .day], from: start)
        let key = String(format: "%04d%02d%02d", c.year ?? 0, c.month ?? 0, c.day ?? 0)
        return (key, max(Int64((next.timeIntervalSince(date) * 1000).rounded(.up)), 1), next)
    }

    /// Calls counted against today's quota, and when it resets; nil without a daily quota.
    public func dailyUsage(now: Date = Date()) async throws -> (used: Int, limit: Int, resetsAt: Date)? {
        guard let daily = limit.daily else { return nil }
        let day = Self.quotaDay(now, in: limit.dailyTimeZone)
        let used = try await redis.send("GET", Keys.crmDaily(adapter: adapter, day: day.key)).string.flatMap { Int($0) } ?? 0
        return (used, daily, day.resetsAt)
    }

    /// Until when every call waits (a CRM's throttling or a spent daily quota); nil when none.
    public func pausedUntil() async throws -> Date? {
        guard let us = try await redis.send("GET", Keys.crmPause(adapter: adapter)).string.flatMap({ Int64($0) }) else { return nil }
        let until = Date(timeIntervalSince1970: Double(us) / 1_000_000)
        return until > Date() ? until : nil
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
