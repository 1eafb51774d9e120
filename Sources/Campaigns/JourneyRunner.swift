import Foundation
import GatewayCore
import GatewayCrypto
import Logging
import NIOConcurrencyHelpers
import Outbound
import RedisClient
import Store

/// Runs journeys in every gateway process. Interactions on `stream:inbound` (consumer group
/// `journeys`, from now on) enrol customers whose event matches an active journey's trigger and take
/// customers out on an exit event. Due steps are found in the partitioned due-time indexes, claimed
/// by lease (`JourneyRunStore`), run, and the customer moved on; a process that dies holding a claim
/// loses it when the lease runs out and another runs the step again. Running a step again is
/// harmless: a send is accepted once per (journey, version, customer, step, enrolment) by the
/// outbound ledger, tags are sets, and only the claim holder with the current move counter may move
/// the customer on.
public final class JourneyRunner: Sendable {
    let redis: RedisPool
    let journeys: JourneyStore
    let runs: JourneyRunStore
    let messages: MessageStore
    let customers: CustomerStore
    let tags: TagStore
    let attributes: CustomerAttributes
    let requireOptIn: Set<String>
    let compile: @Sendable (JourneyDefinition) throws -> CompiledJourney
    let clock: @Sendable () -> Int64
    let owner: String
    /// How long a claimed step is ours before another process may run it again.
    let leaseMs: Int64
    /// (journey id, version) -> the compiled definition; active journeys, re-read every quarter second
    /// (a journey enrols from a quarter second after its activation).
    private let compiled = NIOLockedValueBox<[String: CompiledJourney]>([:])
    private let active = NIOLockedValueBox<(at: ContinuousClock.Instant, journeys: [(Journey, CompiledJourney)])?>(nil)

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
        self.compile = compile
        self.clock = clock
        owner = "\(ProcessInfo.processInfo.hostName)-\(getpid())-\(SecureRandom.alphanumeric(6))"
    }

    /// Runs until cancelled: the trigger consumer and the timer loop.
    public func run(intervalMs: Int = 250) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await StreamGroupReader(redis: self.redis, stream: Keys.inboundStream, group: "journeys", from: "$").run { id, fields in
                    try await self.handle(entry: id, fields: fields)
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    var busy = false
                    for p in 0..<Keys.journeyTimerPartitions {
                        do { busy = try await self.runDue(partition: p) > 0 || busy } catch let e as RedisError where e.kind == .shutdown {
                            return  // the process is stopping
                        } catch {
                            Logger(label: "scrm.journeys").warning("journey steps: \(error)")
                        }
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
        for id in try await redis.send("SMEMBERS", Keys.activeJourneys).strings.sorted() {
            guard let j = try await journeys.get(id), j.state == .active, let c = try? plan(j) else { continue }
            out.append((j, c))
        }
        active.withLockedValue { $0 = (ContinuousClock.now, out) }
        return out
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
        // enrolments are read only when the event ends some journey (this runs for every interaction).
        let exiting = all.filter { j, _ in (j.definition.exitOn ?? []).contains { JourneyPlan.matches($0, type: type, payload: payload) } }
        if !exiting.isEmpty {
            let enrolled = try await runs.enrolments(customer: customer)
            for (j, c) in exiting {
                guard let e = enrolled[j.id], e["state"] == "active" else { continue }
                let step = e["step"].flatMap { Int($0) }.flatMap { $0 < c.plan.nodes.count ? c.plan.nodes[$0].id : nil } ?? ""
                _ = try await runs.exit(journey: j.id, customer: customer, currentStepId: step, now: now)
            }
        }
        for (j, c) in all {
            guard let trigger = c.plan.triggerEvent, JourneyPlan.matches(trigger, type: type, payload: payload) else { continue }
            try await enrol(j, c, customer: customer, now: now)
        }
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
            guard let text = try await redis.send("HGET", Keys.customer(customer), "profile.\(name)").string else { return nil }
            return CustomerAttributes.datetimeMillis(text, defaultZone: attributes.defaultTimeZone)
        }
    }

    func position(_ plan: JourneyPlan, _ m: JourneyPlan.Move) -> JourneyRunStore.Position {
        JourneyRunStore.Position(
            step: m.step, stepId: m.step.map { plan.nodes[$0].id } ?? "", dueAt: m.dueAt, late: m.late,
            skipped: m.skipped.map { .init(id: plan.nodes[$0.step].id, reason: $0.reason) })
    }

    // MARK: steps

    /// Runs the due steps of one partition; returns how many it ran.
    func runDue(partition: Int) async throws -> Int {
        let now = clock()
        var ran = 0
        for (journey, customer) in try await runs.due(partition: partition, now: now) {
            let token = owner + "-" + SecureRandom.alphanumeric(6)
            guard let claimed = try await runs.claim(journey: journey, customer: customer, now: now, leaseMs: leaseMs, token: token),
                let c = try await plan(journey: journey, version: claimed.version), claimed.step < c.plan.nodes.count
            else { continue }
            try await run(claimed, c)
            ran += 1
        }
        return ran
    }

    func run(_ e: JourneyRunStore.Claimed, _ c: CompiledJourney) async throws {
        let plan = c.plan
        let node = plan.nodes[e.step]
        let now = clock()
        var outcome = "completed"
        var taken: Int?
        switch node.kind {
        case .wait: break
        case .send: outcome = try await send(e, c)
        case .tag:
            let t = plan.definition.steps[e.step].tag!
            for name in t.add ?? [] { _ = try await tags.apply(name, add: true, customerIds: [e.customer]) }
            for name in t.remove ?? [] { _ = try await tags.apply(name, add: false, customerIds: [e.customer]) }
        case .exit:
            _ = try await runs.advance(e, stepId: node.id, outcome: "completed", to: .init(step: nil, stepId: "", dueAt: now, late: false, skipped: []), now: now)
            return
        case .branch:
            let yes = try await holds(plan.definition.steps[e.step].branch!.if, e, plan)
            taken = node.successors[yes ? 0 : 1]
            outcome = yes ? "then" : "else"
        case .update, .crm:
            // Refused when the journey is created (CompiledJourney); never reached.
            outcome = "skipped:unsupported"
        }
        let next = plan.after(e.step, taken: taken, now: now, anchorMs: e.anchorMs, late: e.late)
        _ = try await runs.advance(e, stepId: node.id, outcome: outcome, to: position(plan, next), now: now)
    }

    /// The message id of a step's send for one enrolment (the outbound ledger key).
    static func messageId(_ e: JourneyRunStore.Claimed, stepId: String) -> String {
        CustomerID.make(
            milliseconds: e.enrolledAt,
            randomBits: Array(Digest.sha256(Array("journey/\(e.journey)/\(e.version)/\(e.customer)/\(stepId)/\(e.enrolledAt)".utf8)).prefix(10)))
    }

    func send(_ e: JourneyRunStore.Claimed, _ c: CompiledJourney) async throws -> String {
        let stepId = c.plan.nodes[e.step].id
        guard case .found(let customer) = try await customers.customer(id: e.customer) else { return "skipped:customer_gone" }
        let source = CampaignPlanner.MessageSource(
            kind: "journey", id: e.journey, transactional: c.plan.definition.transactional == true, campaign: nil, variant: nil, expiresAt: nil,
            requireOptIn: requireOptIn, linkTokens: nil)
        let id = Self.messageId(e, stepId: stepId)
        switch CampaignPlanner.message(
            source, contents: (c.sends[e.step] ?? [])[...], customer: e.customer, hash: customer.fields, identities: customer.identities,
            createdAt: clock(), messageId: id)
        {
        case .send(var m):
            m.idempotencyKey = "journey:\(e.journey):\(e.version):\(e.customer):\(stepId):\(e.enrolledAt)"
            _ = try await messages.accept(m)
            return "sent"
        case .none(_, let reason):
            return "skipped:\(reason)"
        }
    }

    /// A branch condition for this customer now.
    func holds(_ cond: JourneyDefinition.Condition, _ e: JourneyRunStore.Claimed, _ plan: JourneyPlan) async throws -> Bool {
        for (stepId, field) in [(cond.clicked, "clickedAt"), (cond.opened, "openedAt")] {
            guard let stepId else { continue }
            return try await redis.send("HEXISTS", Keys.message(Self.messageId(e, stepId: stepId)), field).int == 1
        }
        if let stepId = cond.delivered {
            let state = try await redis.send("HGET", Keys.message(Self.messageId(e, stepId: stepId)), "state").string
            return state == "delivered" || state == "sent"
        }
        if let event = cond.event {
            // An interaction of that type on the customer's timeline since enrolment.
            for item in try await redis.send("LRANGE", Keys.customerTimeline(e.customer), "0", "499").strings {
                guard case .object(let o)? = JSONValue.parse(Array(item.utf8)) else { continue }
                let at = o["at"].flatMap { v -> Int64? in if case .int(let i) = v { i } else { nil } } ?? 0
                if at < e.enrolledAt { break }
                if o["type"]?.scalarText == event || ("event." + event).lowercased() == o["type"]?.scalarText?.lowercased() { return true }
            }
            return false
        }
        return false
    }
}
