import GatewayCore
import Metrics
import Store

/// The batch send path: the common case of a batch of queued messages (no provider rate limit, no
/// session window, no quiet hours now, no earlier call in doubt) costs four Redis calls for the
/// whole batch: the messages, their customers and campaigns (two pipelined reads), one claim with
/// the send-time rules (`message_claim_batch`), one completion of those the provider took
/// (`message_complete_batch`). Every other message, and every outcome but a plain acceptance, goes
/// the one-message way (`process`), which decides it exactly as before.
extension OutboundEngine {
    /// A message the batch path may send: its context decided, its address chosen.
    struct PlainSend: Sendable {
        let entry: MessageStore.Entry
        let message: OutboundMessage
        let adapter: ResolvedAdapter
        let address: String
        /// Whose contact history the frequency caps count (bulk messages only).
        let capSubject: String?
    }

    /// Handles a batch of stream entries of one stream (campaign references made messages first);
    /// returns how many it was given.
    func processBatch(_ read: [(MessageStore.Entry, String)]) async -> Int {
        let (entries, made) = await materialized(read)
        guard !entries.isEmpty else { return read.count }
        if entries.count == 1 {
            await process(id: entries[0].1, entry: entries[0].0)
            return read.count
        }
        var plain = [PlainSend]()
        var oneByOne = [(MessageStore.Entry, String)]()
        if let contexts = try? await contexts(entries, made: made) {
            let now = clock()
            for (i, (entry, id)) in entries.enumerated() {
                if let context = contexts[i], let ready = plainSend(context, entry: entry, now: now) {
                    plain.append(ready)
                } else {
                    oneByOne.append((entry, id))
                }
            }
        } else {
            oneByOne = entries  // Redis trouble: each is tried (and left pending) on its own
        }
        let ready = plain, rest = oneByOne
        await withTaskGroup(of: Void.self) { group in
            for (entry, id) in rest { group.addTask { await self.process(id: id, entry: entry) } }
            if !ready.isEmpty { group.addTask { await self.sendPlain(ready) } }
        }
        return read.count
    }

    /// The entries' send contexts: those of messages made just now as they were made, the others read.
    private func contexts(_ entries: [(MessageStore.Entry, String)], made: [String: SendContext]) async throws -> [SendContext?] {
        let toRead = entries.filter { made[$0.0.key] == nil }
        let read = toRead.isEmpty ? [] : try await customers.sendContexts(messageIds: toRead.map(\.1))
        guard !made.isEmpty else { return read }
        var next = read.makeIterator()
        return entries.map { e in made[e.0.key] ?? next.next() ?? nil }
    }

    /// The message if nothing about it needs more than the batch path gives: a queued message of a
    /// running campaign (or none) to a customer who may get it on its channel, through an adapter
    /// without rate limit or session window, outside quiet hours, with no earlier call in doubt.
    private func plainSend(_ context: SendContext, entry: MessageStore.Entry, now: Int64) -> PlainSend? {
        guard let m = OutboundMessage(hash: context.message), m.state == .queued || m.state == .retrying, m.doubtSince == nil,
            let adapter = catalog[m.adapter], adapter.rateLimit == nil, adapter.renders.sessionWindowHours == nil, context.campaignRate == nil,
            now - m.createdAt <= settings.retry.maxAgeMs, m.expiresAt.map({ now < $0 }) ?? true
        else { return nil }
        if let state = context.campaignState, state != "running", state != "completed" { return nil }
        let customer = context.customer
        let decision = SendEligibility.decide(
            channel: m.channel, account: m.account, to: m.to, transactional: m.lane == .transactional, identities: customer?.identities ?? [],
            consent: customer?.consent ?? [:], requireOptIn: settings.contactRules.requireOptIn)
        guard case .send(let address) = decision else { return nil }
        let marketing = m.lane == .bulk
        if marketing, settings.contactRules.quietUntil(nowMs: now, zone: zone(customer?.timezone, account: m.account)) != nil { return nil }
        let caps = marketing && !settings.contactRules.caps.isEmpty
        return PlainSend(
            entry: entry, message: m, adapter: adapter, address: address,
            capSubject: caps ? (m.customerId ?? Keys.contactSubject(channel: m.channel, address: address)) : nil)
    }

    /// Claims the batch in one step, calls the provider for each message claimed (all at once), and
    /// completes those it took in one step.
    private func sendPlain(_ batch: [PlainSend]) async {
        let channel = batch[0].message.channel
        let requests = batch.map { s in
            MessageStore.ClaimRequest(
                id: s.message.id, campaign: s.message.campaign, entry: s.entry, contactSubject: s.capSubject,
                optOutKey: s.message.channel == "wechat" ? nil : customers.optOutKey(channel: s.message.channel, address: s.address))
        }
        let claimedAt = clock()
        guard
            let claims = try? await store.claimBatch(
                requests, owner: consumer, now: claimedAt, caps: settings.contactRules.capArguments(channel: channel))
        else { return }  // Redis trouble: nothing was claimed; the entries stay pending and are taken over
        var toSend = [(PlainSend, attempt: Int)]()
        await withTaskGroup(of: Void.self) { group in
            for (s, claim) in zip(batch, claims) {
                switch claim {
                case .claimed(let attempt): toSend.append((s, attempt))
                case .parked: break
                case .missing, .done: group.addTask { try? await self.ack(s.entry) }
                case .optedOut, .inDoubt:
                    // Decided the one-message way (the opt-out read there; another sender's call reconciled).
                    group.addTask { await self.process(id: s.message.id, entry: s.entry) }
                case .campaignStopped(let state):
                    group.addTask {
                        try? await self.store.finish(
                            s.message, state: .skipped, reason: "campaign_\(state)", lastError: nil, answer: nil, entry: s.entry, now: self.clock())
                    }
                case .capped(let until):
                    group.addTask { try? await self.deferForContactRule(s.message, until: until, rule: "frequency_cap", entry: s.entry) }
                }
            }
        }
        let outcomes = await withTaskGroup(of: (Int, SendOutcome).self) { group in
            for (i, (s, _)) in toSend.enumerated() {
                group.addTask {
                    let outcome = await self.sender.send(
                        Self.payload(s.message, to: s.address), via: s.adapter, unsubscribeURL: self.unsubscribeURL(s.message, address: s.address))
                    return (i, outcome)
                }
            }
            var all = [(Int, SendOutcome)]()
            for await o in group { all.append(o) }
            return all
        }
        var taken = [(message: OutboundMessage, providerId: String?, entry: MessageStore.Entry?)]()
        var others = [(Int, SendOutcome)]()
        for (i, outcome) in outcomes {
            if case .accepted(let providerId) = outcome { taken.append((toSend[i].0.message, providerId, toSend[i].0.entry)) } else { others.append((i, outcome)) }
        }
        let now = clock()
        if (try? await store.completeBatch(taken, now: now)) != nil, !taken.isEmpty {
            Counter(label: "scrm_outbound_messages_total", dimensions: [("channel", channel), ("result", "sent")]).increment(by: taken.count)
            activity?.outbound(channel: channel, result: "sent", atMs: now, count: taken.count)
        }
        // Failures, throttling and doubt: each recorded as the one-message path records it.
        await withTaskGroup(of: Void.self) { group in
            for (i, outcome) in others {
                let (s, attempt) = toSend[i]
                group.addTask {
                    try? await self.record(
                        outcome, s.message, attempt: attempt, adapter: s.adapter, rateKey: Self.rateLimitKey(s.adapter, account: s.message.account),
                        grant: RateLimiter.Grant(), callStart: claimedAt, entry: s.entry, address: s.address, capSubject: s.capSubject)
                }
            }
        }
    }
}
