import GatewayCore
import Store

/// Where a journey's customers are and what its steps did, from the journey's counters
/// (`Keys.journeyStats`): per step entered, waiting there now, completed, skipped by reason, and for
/// a send queued, sent, delivered, failed, opened, clicked and converted (an exit event after it);
/// for a branch the customers sent each way.
struct JourneyReport: Encodable {
    let enrolled: Int
    let active: Int
    let completed: Int
    let exited: Int
    let converted: Int
    /// An audience-triggered journey: members snapshotted at activation, and those not enrolled yet.
    let audience: Audience?
    let steps: [Step]

    struct Audience: Encodable {
        let members: Int
        let toEnrol: Int
    }

    struct Step: Encodable {
        let id: String
        let kind: String
        let entered: Int
        let waiting: Int
        let completed: Int
        let skipped: [String: Int]
        let exited: Int
        let queued: Int?
        let sent: Int?
        let delivered: Int?
        let failed: Int?
        let opened: Int?
        let clicked: Int?
        let converted: Int?
        let then: Int?
        let `else`: Int?
    }

    init(plan: JourneyPlan, stats s: [String: Int], audienceToEnrol: Int?) {
        func n(_ k: String) -> Int { s[k] ?? 0 }
        enrolled = n("enrolled")
        completed = n("completed")
        exited = n("exited")
        converted = n("converted")
        active = max(0, enrolled - completed - exited)
        audience = s["audience"].map { Audience(members: $0, toEnrol: audienceToEnrol ?? 0) }
        steps = plan.nodes.map { node in
            let p = "s:\(node.id):"
            var skipped = [String: Int]()
            for (k, v) in s where k.hasPrefix(p + "skipped:") { skipped[String(k.dropFirst(p.count + 8))] = v }
            let send = node.kind == .send, branch = node.kind == .branch
            return Step(
                id: node.id, kind: node.kind.rawValue, entered: n(p + "entered"), waiting: max(0, n(p + "entered") - n(p + "left")),
                completed: n(p + "completed") + n(p + "queued") + n(p + "then") + n(p + "else"), skipped: skipped, exited: n(p + "exited"),
                queued: send ? n(p + "queued") : nil, sent: send ? n(p + "sent") : nil, delivered: send ? n(p + "delivered") : nil,
                failed: send ? n(p + "failed") : nil, opened: send ? n(p + "opened") : nil, clicked: send ? n(p + "clicked") : nil,
                converted: send ? n(p + "converted") : nil, then: branch ? n(p + "then") : nil, else: branch ? n(p + "else") : nil)
        }
    }
}

/// Where a customer is in each journey they entered, and what each send step did for them (the
/// messages are found by their ids: one per journey, version, customer, step and enrolment).
struct CustomerJourneysView: Encodable {
    let customer: String
    let journeys: [Entry]

    struct Entry: Encodable {
        let journey: String
        let name: String?
        let version: Int
        let state: String
        let step: String?
        let dueAt: String?
        let late: Bool
        let enrolledAt: String?
        let stepAt: String?
        let exitedAt: String?
        let exitedOn: String?
        let history: [Sent]
    }

    struct Sent: Encodable {
        let step: String
        let message: String
        let channel: String?
        let state: String?
        let reason: String?
        let sentAt: String?
        let deliveredAt: String?
        let openedAt: String?
        let clickedAt: String?
    }
}
