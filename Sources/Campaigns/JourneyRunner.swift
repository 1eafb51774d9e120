import Foundation
import GatewayCore
import GatewayCrypto
import Logging
import NIOConcurrencyHelpers
import Outbound
import RedisClient
import Store

/// Runs journeys in every gateway process. Interactions on `stream:inbound` (consumer group
/// `journeys`, from now on) enrol customers whose event matches an active journey's trigger, take
/// customers out on an exit event and end waits early on their `orEvent`; tags added and stages
/// reached that a journey watches arrive on `stream:journeys`; an audience-triggered journey enrols
/// the members snapshotted at its activation, a chunk at a time under a lease. Due steps are found
/// in the partitioned due-time indexes, claimed by lease (`JourneyRunStore`), run, and the customer
/// moved on; a process that dies holding a claim loses it when the lease runs out and another runs
/// the step again. Running a step again is harmless: a send is accepted once per (journey, version,
/// customer, step, enrolment) by the outbound ledger, tags are sets, and only the claim holder with
/// the current move counter may move the customer on.
public final class JourneyRunner: Sendable {
    let redis: RedisPool
    let journeys: JourneyStore
    let runs: JourneyRunStore
    let messages: MessageStore
    let customers: CustomerStore
    let tags: TagStore
    let attributes: CustomerAttributes
    let requireOptIn: Set<String>
    let audiences: AudienceStore
    let timelineCap: Int
    let compile: @Sendable (JourneyDefinition) throws -> CompiledJourney
    let clock: @Sendable () -> Int64
    let owner: String
    /// How long a claimed step is ours before another process may run it again.
    let leaseMs: Int64
    /// (journey id, version) -> the compiled definition; active journeys, re-read every quarter second
    /// (a journey enrols from a quarter second after its activation).
    private let compiled = NIOLockedValueBox<[String: CompiledJourney]>([:])
    private let active = NIOLockedValueBox<(at: ContinuousClock.Instant, journeys: [(Journey, CompiledJourney)])?>(nil)
    /// The watch set this process last wrote (`Keys.journeyWatch`).
    private let watching = NIOLockedValueBox<Set<String>?>(nil)

    public init(
        redis: RedisPool, config: GatewayConfig, customers: CustomerStore, compile: @escaping @Sendable (JourneyDefinition) throws -> CompiledJourney, leaseMs: Int64 = 30_000,
        clock: @escaping @Sendable () -> Int64
    ) {
        self.redis = redis
        self.leaseMs = leaseMs
        journeys = JourneyStore(redis: redis)
        runs = JourneyRunStore(redis: redis)
        messages = MessageStore(redis: redis)
        self.customers = customers
        tags = TagStore(redis: redis)
        attributes = config.customers.attributes
        requireOptIn = config.contactRules.requireOptIn
        audiences = AudienceStore(redis: redis, config: config)
        timelineCap = config.customers.timelineCap
        self.compile = compile
        self.clock = clock
        owner = "\(ProcessInfo.processInfo.hostName)-\(getpid())-\(SecureRandom.alphanumeric(6))"
    }

    /// Runs until cancelled: the trigger consumers, and the timer loop (which also enrols audiences).
    public func run(intervalMs: Int = 250) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await StreamGroupReader(redis: self.redis, streams: self.redis.streams.all(Keys.inboundStream), group: "journeys", from: "$").run { id, fields in
                    try await self.handle(entry: id, fields: fields)
                }
            }
            group.addTask {
                await StreamGroupReader(redis: self.redis, streams: [Keys.journeySignals], group: "journeys", from: "$").run { _, fields in
                    try await self.handle(signal: fields)
                }
            }
            group.addTask {
                var audiencesAt = ContinuousClock.now - .seconds(1)
                while !Task.isCancelled {
                    var busy = false
                    do {
                        // Keeps the watched tags and stages current even when no interaction comes in.
                        _ = try await self.activeJourneys()
                        if ContinuousClock.now - audiencesAt >= .seconds(1) {
                            audiencesAt = ContinuousClock.now
                            busy = try await self.enrolAudiences() > 0
                        }
                        // The partitions side by side: a busy minute is spread over all of them.
                        busy = try await self.runDueEverywhere() > 0 || busy
                    } catch let e as RedisError where e.kind == .shutdown {
                        return  // the process is stopping
                    } catch {
                        Logger(label: "scrm.journeys").warning("journey steps: \(error)")
                    }
                    if !busy { try? await Task.sleep(for: .milliseconds(intervalMs)) }
                }
            }
        }
    }

    // MARK: journeys in force

    func plan(_ j: Journey) throws -> CompiledJourney {
        let key = "\(j.id):\(j.version)"
        if let hit = compiled.withLockedValue({ $0[key] }) { return hit }
        let c = try compile(j.definition)
        compiled.withLockedValue { $0[key] = c }
        return c
    }

    /// The plan a customer enrolled on (`version`), which may be older than the current one.
    func plan(journey id: String, version: Int) async throws -> CompiledJourney? {
        if let hit = compiled.withLockedValue({ $0["\(id):\(version)"] }) { return hit }
        guard let d = try await journeys.definition(id, version: version) else { return nil }
        let c = try compile(d)
        compiled.withLockedValue { $0["\(id):\(version)"] = c }
        return c
    }

    func activeJourneys() async throws -> [(Journey, CompiledJourney)] {
        if let cached = active.withLockedValue({ $0 }), ContinuousClock.now - cached.at < .milliseconds(250) { return cached.journeys }
        var out = [(Journey, CompiledJourney)]()
        for id in try await journeys.activeIds() {
            guard let j = try await journeys.get(id), j.state == .active, let c = try? plan(j) else { continue }
            out.append((j, c))
        }
        active.withLockedValue { $0 = (ContinuousClock.now, out) }
        try await keepWatch(out)
        return out
    }

    /// Keeps `Keys.journeyWatch` (the tags and stages active journeys enrol on) as the active journeys
    /// say: written when this process sees it change.
    func keepWatch(_ all: [(Journey, CompiledJourney)]) async throws {
        var want = Set<String>()
        for (j, _) in all {
            if let t = j.definition.trigger.tagAdded { want.insert("tag:" + t) }
            if let s = j.definition.trigger.stage { want.insert("stage:" + s) }
        }
        guard watching.withLockedValue({ $0 }) != want else { return }
        try await journeys.setWatch(want, builder: owner)
        watching.withLockedValue { $0 = want }
    }

    /// Runs the due steps of every partition, the partitions concurrently; returns how many ran.
    func runDueEverywhere() async throws -> Int {
        try await withThrowingTaskGroup(of: Int.self) { group in
            for p in 0..<Keys.journeyTimerPartitions { group.addTask { try await self.runDue(partition: p) } }
            return try await group.reduce(0, +)
        }
    }

    // MARK: triggers and exits

    func handle(entry: String, fields f: [String: String]) async throws {
        guard let type = f["type"], let customer = f["customer"], !customer.isEmpty else { return }
        var payload = [String: String]()
        if case .object(let o)? = JSONValue.parse(Array((f["payload"] ?? "").utf8)) {
            for (k, v) in o { if let s = v.scalarText { payload[k] = s } }
        }
        let now = clock()
        let all = try await activeJourneys()
        guard !all.isEmpty else { return }
        // Exits first: an event that ends a journey is not also a reason to stay in it. The customer's
        // enrolments are read only when the event ends a journey or wakes a wait in one (this runs
        // for every interaction); each enrolment is judged on the version it entered.
        let concerned = all.filter { j, _ in
            (j.definition.exitOn ?? []).contains { JourneyPlan.matches($0, type: type, payload: payload) }
                || j.definition.steps.contains { $0.wait?.orEvent.map { JourneyPlan.matches($0, type: type, payload: payload) } ?? false }
        }
        if !concerned.isEmpty {
            let enrolled = try await runs.enrolments(customer: customer, journeys: concerned.map(\.0.id))
            for (j, _) in concerned {
                guard let e = enrolled[j.id], e["state"] == "active", let version = e["version"].flatMap({ Int($0) }),
                    let c = try await plan(journey: j.id, version: version), let step = e["step"].flatMap({ Int($0) }), step < c.plan.nodes.count
                else { continue }
                let d = c.plan.definition
                if (d.exitOn ?? []).contains(where: { JourneyPlan.matches($0, type: type, payload: payload) }) {
                    _ = try await runs.exit(journey: j.id, customer: customer, currentStepId: c.plan.nodes[step].id, event: type, now: now)
                } else if let wake = d.steps[step].wait?.orEvent, JourneyPlan.matches(wake, type: type, payload: payload) {
                    _ = try await runs.wake(journey: j.id, customer: customer, step: step, now: now)
                }
            }
        }
        for (j, c) in all {
            guard let trigger = c.plan.triggerEvent, JourneyPlan.matches(trigger, type: type, payload: payload) else { continue }
            try await enrol(j, c, customer: customer, now: now)
        }
    }

    /// A tag added or a stage reached that some active journey watches (`stream:journeys`).
    func handle(signal f: [String: String]) async throws {
        guard let customer = f["customer"], let kind = f["kind"], let value = f["value"] else { return }
        let now = clock()
        for (j, c) in try await activeJourneys() {
            let t = j.definition.trigger
            guard (kind == "tag" && t.tagAdded == value) || (kind == "stage" && t.stage == value) else { continue }
            try await enrol(j, c, customer: customer, now: now)
        }
    }

    /// Enrols members of audience-triggered journeys (snapshotted at activation, `Keys.journeyAudience`)
    /// a chunk at a time, one process per journey (lease). A member is removed from the snapshot after
    /// its enrolment; one enrolled twice after a crash is refused the second time (already in it).
    /// Returns how many it enrolled.
    func enrolAudiences(budget: Duration = .seconds(2)) async throws -> Int {
        var enrolled = 0
        for (j, c) in try await activeJourneys() where c.audience != nil {
            let lease = Lease(redis: redis, key: Keys.journeyAudienceLease(j.id), owner: owner)
            guard try await journeys.audienceToEnrol(j.id) > 0, try await lease.take(ms: leaseMs) else { continue }
            let started = ContinuousClock.now
            while ContinuousClock.now - started < budget {
                let ids = try await journeys.audienceSample(j.id, count: 200)
                if ids.isEmpty { break }
                let now = clock()
                // Sixteen at a time: one round trip each, so a large audience is in within seconds.
                enrolled += try await withThrowingTaskGroup(of: Int.self) { group in
                    for part in stride(from: 0, to: ids.count, by: 16).map({ ids[$0..<min($0 + 16, ids.count)] }) {
                        group.addTask {
                            var n = 0
                            for id in part where try await self.enrol(j, c, customer: id, now: now) == .enrolled { n += 1 }
                            return n
                        }
                    }
                    return try await group.reduce(0, +)
                }
                try await journeys.enrolledFromAudience(j.id, ids)
            }
            try await lease.release()
        }
        return enrolled
    }

    @discardableResult
    public func enrol(_ j: Journey, _ c: CompiledJourney, customer: String, now: Int64) async throws -> JourneyRunStore.Enrolment {
        let anchor = try await anchorMs(c.plan, customer: customer)
        return try await runs.enrol(
            journey: j.id, customer: customer, version: j.version, reentry: c.plan.reentry, anchorMs: anchor,
            start: position(c.plan, c.plan.start(now: now, anchorMs: anchor)), now: now)
    }

    func anchorMs(_ plan: JourneyPlan, customer: String) async throws -> Int64? {
        switch plan.anchor {
        case nil: return nil
        case .fixed(let ms)?: return ms
        case .attribute(let name)?:
            guard let text = try await customers.profileValue(id: customer, name) else { return nil }
            return CustomerAttributes.datetimeMillis(text, defaultZone: attributes.defaultTimeZone)
        }
    }

    func position(_ plan: JourneyPlan, _ m: JourneyPlan.Move) -> JourneyRunStore.Position {
        JourneyRunStore.Position(
            step: m.step, stepId: m.step.map { plan.nodes[$0].id } ?? "", dueAt: m.dueAt, late: m.late,
            skipped: m.skipped.map { .init(id: plan.nodes[$0.step].id, reason: $0.reason) })
    }
}
