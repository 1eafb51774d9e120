import GatewayCore
import GatewayCrypto
import RedisClient

/// Customers in journeys (the enrolment and due-time functions in `Lua/journeys.lua`): enrol, claim a
/// due step, move on after it, exit. Every move checks the claim and the move counter (`seq`), so a
/// step's outcome is applied once however many processes race or die.
public struct JourneyRunStore: Sendable {
    let redis: RedisPool

    public init(redis: RedisPool) { self.redis = redis }

    static func member(journey: String, customer: String) -> String { "\(journey)|\(customer)" }

    /// The message id of a send step for one enrolment (the outbound ledger key): one per journey,
    /// version, customer, step and enrolment.
    public static func messageId(journey: String, version: Int, customer: String, stepId: String, enrolledAt: Int64, layout: IndexLayout) -> String {
        let ulid = ULID.make(
            milliseconds: enrolledAt,
            randomBits: Array(Digest.sha256(Array("journey/\(journey)/\(version)/\(customer)/\(stepId)/\(enrolledAt)".utf8)).prefix(10)))
        return MessageId.make(ulid, recipient: customer, layout: layout)
    }

    static func timers(customer: String) -> String { Keys.journeyTimers(Keys.journeyTimerPartition(customer: customer)) }

    /// Where a customer goes, as the functions take it: the step (index and id), when, late, and the
    /// steps passed over (id, reason).
    public struct Position: Sendable, Equatable {
        public var step: Int?
        public var stepId: String
        public var dueAt: Int64
        public var late: Bool
        public var skipped: [Skipped]

        public struct Skipped: Sendable, Equatable {
            public let id: String
            public let reason: String

            public init(id: String, reason: String) {
                self.id = id
                self.reason = reason
            }
        }

        public init(step: Int?, stepId: String, dueAt: Int64, late: Bool, skipped: [Skipped]) {
            self.step = step
            self.stepId = stepId
            self.dueAt = dueAt
            self.late = late
            self.skipped = skipped
        }

        var arguments: [String] {
            [step.map(String.init) ?? "", stepId, String(dueAt), late ? "1" : "0"]
        }

        var skippedArguments: [String] { skipped.flatMap { [$0.id, $0.reason] } }
    }

    public enum Enrolment: String, Sendable {
        case enrolled, inactive, already
        case noReentry = "no_reentry"
    }

    public func enrol(
        journey: String, customer: String, version: Int, reentry: JourneyPlan.Reentry, anchorMs: Int64?, start: Position, now: Int64
    ) async throws -> Enrolment {
        let (kind, ms): (String, Int64) =
            switch reentry {
            case .never: ("never", 0)
            case .always: ("always", 0)
            case .after(let ms): ("after", ms)
            }
        let keys = [
            Keys.journey(journey), Keys.journeyEnrolment(journey: journey, customer: customer), Self.timers(customer: customer),
            Keys.journeyStats(journey),
        ]
        let args =
            [journey, customer, String(now), kind, String(ms), String(version), anchorMs.map(String.init) ?? ""] + start.arguments
            + [Self.member(journey: journey, customer: customer)] + start.skippedArguments
        if redis.isCluster {
            return try await enrolInSteps(
                journey: journey, customer: customer, args: args, due: start.step == nil ? nil : args[9], member: Self.member(journey: journey, customer: customer))
        }
        let r = try await redis.fcall(StoreFunctions.library, "journey_enrol", keys: keys, args: args).string ?? ""
        return Enrolment(rawValue: r) ?? .inactive
    }

    /// A customer's claimed step: what the process holding `token` must run.
    public struct Claimed: Sendable, Equatable {
        public let journey: String
        public let customer: String
        public let version: Int
        public let step: Int
        public let seq: String
        public let late: Bool
        public let anchorMs: Int64?
        public let enrolledAt: Int64
        public let token: String
    }

    /// Due members of one timers partition (at most `limit`).
    public func due(partition: Int, now: Int64, limit: Int = 100) async throws -> [(journey: String, customer: String)] {
        try await redis.send("ZRANGE", Keys.journeyTimers(partition), "-inf", String(now), "BYSCORE", "LIMIT", "0", String(limit)).strings.compactMap {
            let parts = $0.split(separator: "|", maxSplits: 1).map(String.init)
            return parts.count == 2 ? (parts[0], parts[1]) : nil
        }
    }

    public enum Claim: Sendable, Equatable {
        case claimed(Claimed)
        /// The journey is paused: the step is looked at again `recheckMs` later.
        case held
        /// The journey is archived (or gone).
        case gone
        /// Not due (another process took it, or it moved), or the customer is no longer in it.
        case none
    }

    /// Claims the customer's due step for `leaseMs`, in the same step as checking the journey runs.
    public func claim(journey: String, customer: String, now: Int64, leaseMs: Int64, token: String, recheckMs: Int64 = 1_000) async throws -> Claim {
        if redis.isCluster {
            return try await claimInSteps(journey: journey, customer: customer, now: now, leaseMs: leaseMs, token: token, recheckMs: recheckMs)
        }
        let r = try await redis.fcall(
            StoreFunctions.library, "journey_claim",
            keys: [Self.timers(customer: customer), Keys.journeyEnrolment(journey: journey, customer: customer), Keys.journey(journey)],
            args: [Self.member(journey: journey, customer: customer), String(now), String(leaseMs), token, String(recheckMs)]
        ).strings
        if r == ["held"] { return .held }
        if r == ["gone"] { return .gone }
        guard r.count == 6, let version = Int(r[0]), let step = Int(r[1]) else { return .none }
        return .claimed(
            Claimed(
                journey: journey, customer: customer, version: version, step: step, seq: r[2], late: r[3] == "1", anchorMs: Int64(r[4]),
                enrolledAt: Int64(r[5]) ?? 0, token: token))
    }

    public enum Advance: Sendable, Equatable {
        case moved
        /// The next step is due now and the claim is still ours (`keepMs` longer): run it at once with
        /// this move counter.
        case continued(seq: String)
        /// The claim was lost (another process took the step over) or the customer left.
        case stale
    }

    /// Moves the customer on after the claimed step (`outcome`: the step's counter: completed, queued,
    /// skipped:<reason>...). With `keepMs`, a next step already due keeps the claim (no second claim).
    public func advance(_ c: Claimed, stepId: String, outcome: String, to next: Position, now: Int64, keepMs: Int64 = 0) async throws -> Advance {
        let keys = [
            Keys.journeyEnrolment(journey: c.journey, customer: c.customer), Self.timers(customer: c.customer), Keys.journeyStats(c.journey),
            Keys.journey(c.journey),
        ]
        let args =
            [c.token, c.seq, Self.member(journey: c.journey, customer: c.customer), String(now), stepId, outcome] + next.arguments
            + [String(keepMs)] + next.skippedArguments
        if redis.isCluster { return try await advanceInSteps(c, args: args) }
        let r = try await redis.fcall(StoreFunctions.library, "journey_advance", keys: keys, args: args).strings
        switch r.first {
        case "ok": return .moved
        case "continue": return r.count > 1 ? .continued(seq: r[1]) : .stale
        default: return .stale
        }
    }

    /// The claim on the customer's next step, kept by `advance` (`.continued`).
    public func continued(_ c: Claimed, step: Int, seq: String, late: Bool) -> Claimed {
        Claimed(
            journey: c.journey, customer: c.customer, version: c.version, step: step, seq: seq, late: late, anchorMs: c.anchorMs, enrolledAt: c.enrolledAt,
            token: c.token)
    }

    /// Takes the customer out of the journey at once (`event`: the exit event's type, or `archived`).
    /// The last send before an exit event counts a conversion.
    public func exit(journey: String, customer: String, currentStepId: String, event: String, now: Int64) async throws -> Bool {
        let keys = [Keys.journeyEnrolment(journey: journey, customer: customer), Self.timers(customer: customer), Keys.journeyStats(journey)]
        let args = [Self.member(journey: journey, customer: customer), String(now), currentStepId, event]
        if redis.isCluster { return try await exitInSteps(journey: journey, customer: customer, args: args) }
        return try await redis.fcall(StoreFunctions.library, "journey_exit", keys: keys, args: args).int == 1
    }

    /// Ends a wait early (its `orEvent` happened) if the customer still waits at `step`.
    public func wake(journey: String, customer: String, step: Int, now: Int64) async throws -> Bool {
        if redis.isCluster { return try await wakeInSteps(journey: journey, customer: customer, step: step, now: now) }
        return try await redis.fcall(
            StoreFunctions.library, "journey_wake",
            keys: [Keys.journeyEnrolment(journey: journey, customer: customer), Self.timers(customer: customer)],
            args: [Self.member(journey: journey, customer: customer), String(step), String(now)]
        ).int == 1
    }

    /// A crm step: marks the customer a qualified lead and/or adds a note to their interactions (the
    /// CRM sync adapter sends both). False when the customer is gone.
    public func crm(customer: String, qualify: Bool, note: String?, journey: String, step: String, timelineCap: Int, now: Int64) async throws -> Bool {
        let args = [String(now), qualify ? "1" : "0", note ?? "", journey, step, String(timelineCap)]
        if redis.isCluster { return try await crmInSteps(customer: customer, args: args) }
        return try await redis.fcall(
            StoreFunctions.library, "journey_crm", keys: [Keys.customer(customer), Keys.customerTimeline(customer)], args: [customer] + args
        ).string == "ok"
    }

    /// The customer's enrolments in `journeys` (journey id -> its fields), those they are (or were) in.
    /// There is no per-customer index of journeys (memory per enrolment): the caller names the
    /// journeys that matter (the active ones an event concerns, or all for the customer's view).
    public func enrolments(customer: String, journeys ids: [String]) async throws -> [String: [String: String]] {
        guard !ids.isEmpty else { return [:] }
        let hashes = try await redis.pipelineChecked(ids.map { ["HGETALL", Keys.journeyEnrolment(journey: $0, customer: customer)] })
        return Dictionary(uniqueKeysWithValues: zip(ids, hashes.map(\.dictionary)).filter { !$0.1.isEmpty })
    }

    /// When the customer's next step in the journey is due (ms), if it waits on a timer.
    public func dueAt(journey: String, customer: String) async throws -> Int64? {
        try await redis.send("ZSCORE", Keys.journeyTimers(Keys.journeyTimerPartition(customer: customer)), "\(journey)|\(customer)").string
            .flatMap { Double($0) }.map { Int64($0) }
    }

    public func stats(_ journey: String) async throws -> [String: Int] {
        try await redis.send("HGETALL", Keys.journeyStats(journey)).dictionary.compactMapValues { Int($0) }
    }
}
