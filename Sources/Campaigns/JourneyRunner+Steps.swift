import Foundation
import GatewayCore
import GatewayCrypto
import Outbound
import RedisClient
import Store

/// The steps of a journey, run for one customer once their step is due and claimed.
extension JourneyRunner {
    /// Runs the due steps of one partition; returns how many it ran. Steps of a paused journey stay
    /// where they are (looked at again a second later); customers of an archived one leave it.
    func runDue(partition: Int) async throws -> Int {
        let now = clock()
        var ran = 0
        for (journey, customer) in try await runs.due(partition: partition, now: now) {
            let token = owner + "-" + SecureRandom.alphanumeric(6)
            switch try await runs.claim(journey: journey, customer: customer, now: now, leaseMs: leaseMs, token: token) {
            case .claimed(let claimed):
                guard let c = try await plan(journey: journey, version: claimed.version), claimed.step < c.plan.nodes.count else { continue }
                try await run(claimed, c)
                ran += 1
            case .gone: _ = try await runs.exit(journey: journey, customer: customer, currentStepId: "", event: "archived", now: now)
            case .held, .none: continue
            }
        }
        return ran
    }

    /// Runs the claimed step, then, while the next one is due at once (a send after a send, a tag
    /// after a branch), that one too under the same claim (at most 32 in a row).
    func run(_ claimed: JourneyRunStore.Claimed, _ c: CompiledJourney) async throws {
        var e = claimed
        for _ in 0..<32 {
            let (outcome, next) = try await step(e, c)
            let r = try await runs.advance(e, stepId: c.plan.nodes[e.step].id, outcome: outcome, to: position(c.plan, next), now: clock(), keepMs: leaseMs)
            guard case .continued(let seq) = r, let step = next.step else { return }
            e = runs.continued(e, step: step, seq: seq, late: next.late)
        }
    }

    /// One step for one customer: its outcome counter and where the customer goes next.
    func step(_ e: JourneyRunStore.Claimed, _ c: CompiledJourney) async throws -> (String, JourneyPlan.Move) {
        let plan = c.plan
        let node = plan.nodes[e.step]
        let step = plan.definition.steps[e.step]
        let now = clock()
        var outcome = "completed"
        var taken: Int?
        switch node.kind {
        case .wait: break
        case .send: outcome = try await send(e, c)
        case .tag:
            for name in step.tag!.add ?? [] { _ = try await tags.apply(name, add: true, customerIds: [e.customer]) }
            for name in step.tag!.remove ?? [] { _ = try await tags.apply(name, add: false, customerIds: [e.customer]) }
        case .update: outcome = try await update(e.customer, step.update!, now: now)
        case .crm:
            let a = step.crm!
            let ok = try await runs.crm(
                customer: e.customer, qualify: a.qualify == true, note: a.note, journey: e.journey, step: node.id, timelineCap: timelineCap, now: now)
            outcome = ok ? "completed" : "skipped:customer_gone"
        case .exit:
            return ("completed", JourneyPlan.Move(step: nil, dueAt: now))
        case .branch:
            let yes = try await holds(step.branch!.if, e, c)
            taken = node.successors[yes ? 0 : 1]
            outcome = yes ? "then" : "else"
        }
        return (outcome, plan.after(e.step, taken: taken, now: now, anchorMs: e.anchorMs, late: e.late))
    }

    func messageId(_ e: JourneyRunStore.Claimed, stepId: String) -> String {
        JourneyRunStore.messageId(
            journey: e.journey, version: e.version, customer: e.customer, stepId: stepId, enrolledAt: e.enrolledAt, layout: messages.layout)
    }

    /// Queues the step's message on the first channel the customer may get (the outbound ledger sends
    /// it once). Marketing messages wait out quiet hours, but never past the next wait's moment: the
    /// message expires then and is skipped with the reason.
    func send(_ e: JourneyRunStore.Claimed, _ c: CompiledJourney) async throws -> String {
        let stepId = c.plan.nodes[e.step].id
        guard case .found(let customer) = try await customers.customer(id: e.customer) else { return "skipped:customer_gone" }
        let now = clock()
        let source = CampaignPlanner.MessageSource(
            kind: "journey", id: e.journey, transactional: c.plan.definition.transactional == true, campaign: nil, variant: nil,
            expiresAt: c.plan.nextWaitMoment(after: e.step, now: now, anchorMs: e.anchorMs), requireOptIn: requireOptIn, linkTokens: c.linkTokens)
        let id = messageId(e, stepId: stepId)
        switch CampaignPlanner.message(
            source, contents: (c.sends[e.step] ?? [])[...], customer: e.customer, hash: customer.fields, identities: customer.identities,
            createdAt: now, messageId: id)
        {
        case .send(var m):
            m.idempotencyKey = "journey:\(e.journey):\(e.version):\(e.customer):\(stepId):\(e.enrolledAt)"
            m.journey = "\(e.journey):\(stepId)"
            _ = try await messages.accept(m)
            return "queued"
        case .none(_, let reason):
            return "skipped:\(reason)"
        case .group:
            return "skipped:group_send_in_journey"  // refused when the journey is compiled
        }
    }

    /// An update step: sets (or, for null, removes) profile attributes, as the customers API does.
    func update(_ customer: String, _ values: [String: JSONValue], now: Int64) async throws -> String {
        var patch = CustomerStore.ProfilePatch()
        patch.source = "journey"
        for (name, value) in values {
            if value == .null { patch.remove.insert("profile.\(name)") } else { patch.fields["profile.\(name)"] = try attributes.canonical(name, value) }
        }
        var id = customer
        for _ in 0..<4 {
            switch try await customers.patch(id: id, patch, nowMs: now) {
            case .updated: return "completed"
            case .merged(let into): id = into
            case .notFound: return "skipped:customer_gone"
            }
        }
        return "skipped:customer_gone"
    }

    /// A branch condition for this customer now.
    func holds(_ cond: JourneyDefinition.Condition, _ e: JourneyRunStore.Claimed, _ c: CompiledJourney) async throws -> Bool {
        for (stepId, field) in [(cond.clicked, "clickedAt"), (cond.opened, "openedAt")] {
            guard let stepId else { continue }
            return try await messages.field(messageId(e, stepId: stepId), field) != nil
        }
        if let stepId = cond.delivered {
            let state = try await messages.field(messageId(e, stepId: stepId), "state")
            return state == "delivered" || state == "sent"
        }
        if let event = cond.event {
            // An interaction of that type on the customer's timeline since enrolment, matched as
            // triggers and exits are.
            let match = JourneyDefinition.EventMatch(event: event)
            for item in try await customers.timeline(id: e.customer, limit: 500) {
                guard case .object(let o)? = JSONValue.parse(Array(item.utf8)) else { continue }
                let at = o["at"].flatMap { v -> Int64? in if case .int(let i) = v { i } else { nil } } ?? 0
                if at < e.enrolledAt { break }
                if let type = o["type"]?.scalarText, JourneyPlan.matches(match, type: type, payload: [:]) { return true }
            }
            return false
        }
        if let expression = c.conditions[e.step] {
            return try await audiences.contains(expression, customer: e.customer, nowMs: clock())
        }
        return false
    }
}
