import GatewayCore
import NIOConcurrencyHelpers
import Outbound
import RedisClient
import Store

/// Campaign messages at send time, with the planner's own rules (`CampaignPlanner.message`), so
/// planning and sending cannot disagree:
/// - a queued reference (campaign, variant, customer, channel) becomes the recipient's message,
///   rendered with their data as it is when a sender takes it (`materialize`);
/// - fallback: when a campaign message fails for a recipient reason (WeChat unsubscribed or bad
///   openid, an opted-out or invalid number, a hard bounce, consent revoked, a variable missing), the
///   same message on the campaign's next channel (`next(after:)`). The recipient is read again. The
///   message keeps its id: the ledger entry (campaign, customer) allows one delivery at most,
///   whichever channel makes it.
public final class CampaignRenderer: CampaignRendering {
    let store: CampaignStore
    let messages: MessageStore
    let customers: CustomerStore
    let planner: CampaignPlanner
    let compile: @Sendable (Campaign) throws -> CompiledCampaign
    /// Campaign id -> the campaign and its compiled templates (a definition never changes once created).
    private let compiled = NIOLockedValueBox<[String: (Campaign, CompiledCampaign)]>([:])

    public init(redis: RedisPool, customers: CustomerStore, compile: @escaping @Sendable (Campaign) throws -> CompiledCampaign) {
        self.store = CampaignStore(redis: redis)
        self.messages = MessageStore(redis: redis)
        self.customers = customers
        self.planner = CampaignPlanner(redis: redis)
        self.compile = compile
    }

    public func materialize(_ entries: [(entry: MessageStore.Entry, messageId: String)], group: String) async throws -> MaterializedBatch {
        var out = MaterializedBatch()
        let references = entries.compactMap { e in e.entry.reference.map { (e.entry, e.messageId, $0) } }
        guard !references.isEmpty else { return out }
        let recipients = try await store.recipients(references.map(\.2.customer))
        var made = [(entry: MessageStore.Entry, messageId: String, made: MessageStore.Made)]()
        made.reserveCapacity(references.count)
        for ((entry, id, ref), recipient) in zip(references, recipients) {
            made.append((entry, id, try await message(ref, id: id, queuedAt: ref.queuedAt, recipient: recipient)))
        }
        let outcomes = try await messages.materialize(made, group: group)
        for (i, outcome) in outcomes.enumerated() {
            let (entry, _, what) = made[i]
            switch (outcome, what) {
            case (.settled, _): out.settled.insert(entry.key)
            case (.created, .message(let m)):
                // What the sender would read back: the message as created, the customer as read to make it.
                var hash = Dictionary(m.fields, uniquingKeysWith: { a, _ in a })
                hash["entry"] = entry.id
                let rate = compiled.withLockedValue { $0[m.campaign ?? ""]?.0.definition.ratePerSecond }
                out.made[entry.key] = SendContext(
                    message: hash, customer: Customer(id: references[i].2.customer, hash: recipients[i].hash, identities: recipients[i].identities, tags: []),
                    campaignState: "running", campaignRate: rate.flatMap { $0 > 0 ? $0 : nil })
            case (.created, .refused), (.existing, _): break
            }
        }
        return out
    }

    /// The message a reference becomes: on its channel or a later one of its variant, the first the
    /// recipient may get and that renders with their data; else why not.
    func message(_ ref: MessageStore.Reference, id: String, queuedAt: Int64, recipient: (hash: [String: String], identities: [Identity])) async throws
        -> MessageStore.Made
    {
        guard let (c, compiled) = try await campaign(ref.campaign) else { return .refused(channel: ref.channel, reason: "campaign_not_sendable") }
        // A record gone since the snapshot was erased (customers are deleted only by erasure); one merged away is not sent to.
        guard recipient.hash["createdAt"] != nil else { return .refused(channel: "", reason: "erased") }
        guard recipient.hash["mergedInto"] == nil else { return .refused(channel: "", reason: "customer_gone") }
        let contents = compiled.contents[ref.variant] ?? []
        let start = contents.firstIndex { $0.channel == ref.channel } ?? contents.startIndex
        switch planner.message(
            c, compiled: compiled, variant: ref.variant, contents: contents[start...], customer: ref.customer, hash: recipient.hash,
            identities: recipient.identities, createdAt: queuedAt, messageId: id)
        {
        case .send(let m): return .message(m)
        case .none(let channel, let reason): return .refused(channel: channel, reason: reason)
        case .group: return .refused(channel: WeComGroupSend.channel, reason: "render_failed")  // the planner never refers a group send
        }
    }

    /// The message on the first channel after `m.channel` (in the recipient's variant) that the
    /// recipient may get and that renders with their data; nil when there is none.
    public func next(after m: OutboundMessage) async throws -> OutboundMessage? {
        guard let id = m.campaign, let variant = m.variant, let customer = m.customerId, let (c, compiled) = try await campaign(id) else { return nil }
        let contents = compiled.contents[variant] ?? []
        guard let i = contents.firstIndex(where: { $0.channel == m.channel }), i + 1 < contents.count,
            let live = try await recipient(customer)
        else { return nil }
        guard
            case .send(let next) = planner.message(
                c, compiled: compiled, variant: variant, contents: contents[(i + 1)...], customer: live.id, hash: live.fields, identities: live.identities,
                createdAt: m.createdAt, messageId: m.id)  // the ledger key stays, even if the customer merged since
        else { return nil }
        return next
    }

    private func campaign(_ id: String) async throws -> (Campaign, CompiledCampaign)? {
        if let hit = compiled.withLockedValue({ $0[id] }) { return hit }
        guard let c = try await store.get(id) else { return nil }
        // A campaign today's adapters cannot compile (one was disabled since) has no message to make
        // and no next channel: the recipient is refused, or the message ends with its own reason,
        // instead of failing again at every take-over.
        guard let built = try? compile(c) else { return nil }
        let entry = (c, built)
        compiled.withLockedValue { cache in
            if cache.count >= 256 { cache.removeAll() }
            cache[id] = entry
        }
        return entry
    }

    /// The customer as they are now, following a merge to the survivor.
    private func recipient(_ id: String) async throws -> Customer? {
        var lookup = try await customers.customer(id: id)
        if case .merged(let survivor) = lookup { lookup = try await customers.customer(id: survivor) }
        guard case .found(let c) = lookup else { return nil }
        return c
    }
}
