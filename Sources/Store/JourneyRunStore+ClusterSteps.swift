import GatewayCore
import RedisClient

/// Journeys on a Redis Cluster (docs/cluster-key-model.md, "Journeys"). The enrolment is a customer
/// key; the timers partition, the journey and its stats are in other slots. Each change of an
/// enrolment is one call in the customer's slot (`Lua/journeys.lua`, the `_slot` functions), its
/// counts through the slot's counter outbox; the journey's state is read first and the timer moved
/// around it, in the order that keeps a stopped process harmless:
/// - enrol: the timer added (`ZADD NX`) before the enrolment, and taken back when it did not enrol;
/// - claim: the timer leased first (`journey_timer_lease`), then the enrolment claimed; an enrolment
///   that moved on to a step not due yet puts the timer back to its due time (`dueAt`), one no longer
///   waiting removes it while it is still at this lease;
/// - advance and exit: the enrolment first, then the timer as it says;
/// - wake: the enrolment marked, then the timer moved to now.
extension JourneyRunStore {
    private var outboxes: MessageStore { MessageStore(redis: redis) }

    private func journeyState(_ journey: String) async throws -> String? {
        try await redis.send("HGET", Keys.journey(journey), "state").string
    }

    func enrolInSteps(journey: String, customer: String, args: [String], due: String?, member: String) async throws -> Enrolment {
        guard try await journeyState(journey) == "active" else { return .inactive }
        let timers = Self.timers(customer: customer)
        var added = false
        if let due { added = try await redis.send("ZADD", timers, "NX", due, member).int == 1 }
        let shard = IndexShard(customer: customer)
        let r = try await redis.fcall(
            StoreFunctions.library, "journey_enrol_slot",
            keys: [Keys.counterOutbox(shard), Keys.journeyEnrolment(journey: journey, customer: customer)], args: [Keys.journeyStats(journey)] + args
        ).strings
        if added, !(r.first == "enrolled" && r.count > 1 && r[1] == "1"), let due {
            _ = try await redis.fcall(StoreFunctions.library, "zset_remove_unchanged", keys: [timers], args: [member, due])
        }
        try await outboxes.flushCounters([shard])
        return Enrolment(rawValue: r.first ?? "") ?? .inactive
    }

    func claimInSteps(journey: String, customer: String, now: Int64, leaseMs: Int64, token: String, recheckMs: Int64) async throws -> Claim {
        let timers = Self.timers(customer: customer), member = Self.member(journey: journey, customer: customer)
        let until = String(now + leaseMs)
        guard try await redis.fcall(StoreFunctions.library, "journey_timer_lease", keys: [timers], args: [member, String(now), until]).int == 1 else {
            return .none
        }
        switch try await journeyState(journey) {
        case "active": break
        case "paused", "draft":
            _ = try await redis.send("ZADD", timers, String(now + recheckMs), member)
            return .held
        default: return .gone
        }
        let r = try await redis.fcall(
            StoreFunctions.library, "journey_claim_slot", keys: [Keys.journeyEnrolment(journey: journey, customer: customer)], args: [token, String(now)]
        ).strings
        if r.first == "done" {
            _ = try await redis.fcall(StoreFunctions.library, "zset_remove_unchanged", keys: [timers], args: [member, until])
            return .none
        }
        if r.first == "early", r.count > 1 {
            _ = try await redis.send("ZADD", timers, r[1], member)
            return .none
        }
        guard r.count == 6, let version = Int(r[0]), let step = Int(r[1]) else { return .none }
        return .claimed(
            Claimed(
                journey: journey, customer: customer, version: version, step: step, seq: r[2], late: r[3] == "1", anchorMs: Int64(r[4]),
                enrolledAt: Int64(r[5]) ?? 0, token: token))
    }

    func advanceInSteps(_ c: Claimed, args: [String]) async throws -> Advance {
        let running = try await journeyState(c.journey) == "active"
        let shard = IndexShard(customer: c.customer)
        let r = try await redis.fcall(
            StoreFunctions.library, "journey_advance_slot",
            keys: [Keys.counterOutbox(shard), Keys.journeyEnrolment(journey: c.journey, customer: c.customer)],
            args: [Keys.journeyStats(c.journey), running ? "1" : "0"] + args
        ).strings
        let timers = Self.timers(customer: c.customer), member = Self.member(journey: c.journey, customer: c.customer)
        if r.count > 3 {
            _ = try await redis.send(r[2] == "rem" ? ["ZREM", timers, member] : ["ZADD", timers, r[3], member])
        }
        try await outboxes.flushCounters([shard])
        switch r.first {
        case "ok": return .moved
        case "continue": return r.count > 1 && !r[1].isEmpty ? .continued(seq: r[1]) : .stale
        default: return .stale
        }
    }

    func exitInSteps(journey: String, customer: String, args: [String]) async throws -> Bool {
        let shard = IndexShard(customer: customer)
        let left = try await redis.fcall(
            StoreFunctions.library, "journey_exit_slot",
            keys: [Keys.counterOutbox(shard), Keys.journeyEnrolment(journey: journey, customer: customer)], args: [Keys.journeyStats(journey)] + args
        ).int == 1
        if left { _ = try await redis.send("ZREM", Self.timers(customer: customer), Self.member(journey: journey, customer: customer)) }
        try await outboxes.flushCounters([shard])
        return left
    }

    func wakeInSteps(journey: String, customer: String, step: Int, now: Int64) async throws -> Bool {
        let member = Self.member(journey: journey, customer: customer)
        let due = try await redis.send("ZSCORE", Self.timers(customer: customer), member).string.flatMap { Double($0) }
        guard let due, due > Double(now) else { return false }
        guard
            try await redis.fcall(
                StoreFunctions.library, "journey_wake_slot", keys: [Keys.journeyEnrolment(journey: journey, customer: customer)],
                args: [String(step), String(now)]
            ).int == 1
        else { return false }
        return try await redis.fcall(StoreFunctions.library, "journey_timer_wake", keys: [Self.timers(customer: customer)], args: [member, String(now)]).int == 1
    }

    func crmInSteps(customer: String, args: [String]) async throws -> Bool {
        let shards = IndexShards(redis: redis, attributes: nil)
        let (_, r) = try await shards.callFollowingMerges(redis, "journey_crm_slot", customer, keys: { [Keys.customer($0), Keys.customerTimeline($0)] }) { id in
            [id] + args
        }
        try await CustomerStore.appendEmitted(r.last?.strings ?? [], redis: redis)
        return r.first?.string == "ok"
    }
}
