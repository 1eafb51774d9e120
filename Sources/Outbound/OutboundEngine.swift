import Foundation
import GatewayCore
import GatewayCrypto
import Metrics
import RedisClient
import Store

/// The senders: per channel, read the transactional lane then the bulk stream (consumer group
/// `senders`), and for each message check consent and the session window, wait for the shared rate
/// limit, claim the ledger entry, call the provider, and record the outcome (sent, retry with backoff,
/// dead letter). Each process keeps a liveness key; once a process's key is gone its pending entries
/// are taken over (XCLAIM) within seconds, and XAUTOCLAIM takes over entries of any consumer idle
/// past `claimIdleMs`. A message left in `sending` (or whose call got no answer) is settled by asking
/// the provider where its spec offers a lookup (seen: sent; not seen: sent now), else resent only
/// inside the provider's own dedup window, else dead-lettered as `outcome_unknown`. Run one per
/// gateway process; all state is in Redis.
public final class OutboundEngine: Sendable {
    public struct Settings: Sendable {
        /// Provider calls in flight per channel in this process.
        public var concurrency = 32
        public var batch = 64
        public var idleSleepMs = 50
        /// An entry pending this long with a consumer is taken over (the consumer is presumed dead).
        /// A sender that keeps a liveness key loses its entries sooner: once the key is gone.
        public var claimIdleMs: Int64 = 60_000
        /// How long a sender's liveness key lives (it is refreshed every second).
        public var livenessMs: Int64 = 5_000
        /// A send left in doubt is settled by asking the provider (where its spec has a `lookup`) this
        /// long after the doubtful call began, so that the provider has recorded what it took.
        public var lookupDelayMs: Int64 = 10_000
        public var retry = RetryPolicy()
        /// When a failing provider is left alone (shared with every process through Redis).
        public var circuit = RateLimiter.Circuit()
        /// Frequency caps and quiet hours for bulk (marketing) messages.
        public var contactRules = ContactRules()
        /// Account id -> time zone of its followers, where it differs from `contactRules.timezone`.
        public var accountTimezones: [String: String] = [:]
        /// Douyin account id -> the enterprise account's own open_id (a reply names it).
        public var douyinOpenIds: [String: String] = [:]

        public init() {}
    }

    let catalog: AdapterCatalog
    let sender: AdapterSender
    let limiter: RateLimiter
    let store: MessageStore
    let customers: CustomerStore
    let settings: Settings
    let clock: @Sendable () -> Int64
    let links: UnsubscribeLinks?
    /// Campaign messages made and moved at send time (`CampaignRenderer`).
    let campaigns: (any CampaignRendering)?
    /// Counts sends and failures per channel for the dashboard.
    let activity: ActivityStats?
    /// This process's consumer name in the group.
    public var consumer: String { queue.consumer }
    let queue: OutboundQueue
    /// How the send queues are partitioned (read all of each lane's partitions).
    let streams: StreamPartitions
    let zones = TimeZoneCache()

    public init(
        redis: RedisPool, catalog: AdapterCatalog, sender: AdapterSender, customers: CustomerStore, links: UnsubscribeLinks?,
        settings: Settings = Settings(), campaigns: (any CampaignRendering)? = nil, activity: ActivityStats? = nil,
        clock: @escaping @Sendable () -> Int64
    ) {
        self.activity = activity
        self.catalog = catalog
        self.sender = sender
        self.limiter = RateLimiter(redis: redis, circuit: settings.circuit)
        self.store = MessageStore(redis: redis)
        self.customers = customers
        self.links = links
        self.campaigns = campaigns
        self.settings = settings
        self.clock = clock
        self.queue = OutboundQueue(redis: redis, consumer: "\(ProcessInfo.processInfo.hostName)-\(getpid())-\(SecureRandom.alphanumeric(6))")
        self.streams = redis.streams
    }

    /// Runs until the task is cancelled.
    public func run() async throws {
        // concurrency 0: this process only accepts messages; other processes send them.
        guard settings.concurrency > 0 else { return }
        let channels = Set(catalog.adapters.values.map(\.spec.channel.rawValue)).sorted()
        await withTaskGroup(of: Void.self) { group in
            for channel in channels {
                group.addTask { await self.serve(channel: channel) }
            }
            group.addTask { await self.maintain(channels: channels) }
        }
    }

    // MARK: loops

    private func serve(channel: String) async {
        // Each lane's partitions (and a queue carried over from a single Redis), the transactional lane first.
        var lanes = [[String]]()
        for lane in [OutboundMessage.Lane.transactional, .bulk] { lanes.append(await queues(channel: channel, lane: lane)) }
        for stream in lanes.joined() { await queue.ensureGroup(stream) }
        // Entries are read and handled in batches (`processBatch`: one read of their contexts, one
        // claim, one completion); several batches are in flight at once, `concurrency` messages in all.
        let batch = max(1, min(settings.batch, settings.concurrency / 2))
        await withTaskGroup(of: Int.self) { group in
            // Children are batches (returning their size), plus at most one idle timer (returning -1):
            // `group.next()` then wakes on whichever ends first.
            var running = 0
            var idling = false  // an idle timer is pending
            var readNow = true
            while !Task.isCancelled {
                if running < settings.concurrency, readNow {
                    var entries = [(MessageStore.Entry, String)]()
                    var idleMs = settings.idleSleepMs
                    do {
                        for partitions in lanes where entries.isEmpty {
                            entries = try await queue.read(partitions, count: min(settings.concurrency - running, batch))
                        }
                    } catch {
                        idleMs = 500  // Redis away: try again shortly
                        // A partition whose group a failover lost (NOGROUP) fails the whole read: make it again.
                        for stream in lanes.joined() { await queue.ensureGroup(stream) }
                    }
                    if !entries.isEmpty {
                        running += entries.count
                        group.addTask { await self.processBatch(entries) }
                        continue
                    }
                    if !idling {
                        idling = true
                        group.addTask {
                            try? await Task.sleep(for: .milliseconds(idleMs))
                            return -1
                        }
                    }
                    readNow = false
                }
                // A batch ended (read again at once) or the idle timer fired.
                if let done = await group.next() {
                    if done < 0 { idling = false } else { running -= done }
                }
                readNow = true
            }
            group.cancelAll()
        }
    }

    /// The streams one lane of a channel's queue is read from: its partitions, and the queue itself
    /// when it was carried over from a single Redis with entries in it (`RedisPool.carriedOver`).
    private func queues(channel: String, lane: OutboundMessage.Lane) async -> [String] {
        let base = Keys.outboundStream(channel: channel, lane: lane)
        return streams.all(base) + (await store.carriedOver(base).map { [$0] } ?? [])
    }

    private func maintain(channels: [String]) async {
        var queues = [String]()
        for c in channels {
            for lane in [OutboundMessage.Lane.transactional, .bulk] { queues += await self.queues(channel: c, lane: lane) }
        }
        var lastClaim = Int64(0), lastBeat = Int64(0), lastDeadCheck = Int64(0), lastCounterFlush = Int64(0)
        try? await queue.register(now: clock())
        while !Task.isCancelled {
            // Wall time for the liveness key (Redis expires it in real time, whatever the gateway's clock says).
            let wall = Int64(Date().timeIntervalSince1970 * 1000)
            if wall - lastBeat >= 1_000 {
                lastBeat = wall
                try? await queue.beat(ms: settings.livenessMs)
            }
            let now = clock()
            _ = try? await store.moveDueRetries(now: now)
            if wall - lastCounterFlush >= 60_000 {
                lastCounterFlush = wall
                try? await store.flushAllCounters()  // a cluster's counts a stopped sender left in its outboxes
            }
            if wall - lastDeadCheck >= 2_000 {
                lastDeadCheck = wall
                for stream in queues { await takeOverDead(stream) }
            }
            if now - lastClaim >= min(5_000, settings.claimIdleMs) {
                lastClaim = now
                for stream in queues { await takeOver(stream) }
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }

    /// The pending entries of senders whose liveness key is gone, taken over and processed now.
    private func takeOverDead(_ stream: String) async {
        let claimed = await queue.takeOverDead(stream)
        if !claimed.isEmpty { Counter(label: "scrm_outbound_reclaimed_total", dimensions: [("why", "sender_gone")]).increment(by: claimed.count) }
        for (entry, id) in await materialized(claimed).entries { await process(id: id, entry: entry) }
    }

    /// Entries a stalled sender held longer than `claimIdleMs`, taken over and processed here.
    private func takeOver(_ stream: String) async {
        let claimed = await queue.takeOverIdle(stream, idleMs: settings.claimIdleMs)
        if !claimed.isEmpty { Counter(label: "scrm_outbound_reclaimed_total").increment(by: claimed.count) }
        for (entry, id) in await materialized(claimed).entries { await process(id: id, entry: entry) }
    }

    /// `entries` once the campaign references among them are messages (`CampaignRendering`), less
    /// those settled on the way (refused or repeated), with the send contexts of the messages made
    /// now. On Redis trouble the references are left pending, to be taken over later.
    func materialized(_ entries: [(MessageStore.Entry, String)]) async -> (entries: [(MessageStore.Entry, String)], made: [String: SendContext]) {
        let references = entries.filter { $0.0.reference != nil }.map { (entry: $0.0, messageId: $0.1) }
        guard !references.isEmpty else { return (entries, [:]) }
        guard let campaigns else { return (entries.filter { $0.0.reference == nil }, [:]) }  // a process without campaigns leaves them
        do {
            let batch = try await campaigns.materialize(references, group: Keys.outboundGroup)
            return (batch.settled.isEmpty ? entries : entries.filter { !batch.settled.contains($0.0.key) }, batch.made)
        } catch {
            return (entries.filter { $0.0.reference == nil }, [:])
        }
    }

    // MARK: one message

    func process(id: String, entry: MessageStore.Entry?) async {
        do {
            try await processThrowing(id: id, entry: entry)
        } catch {
            // Redis trouble mid-way: the entry stays pending and is taken over later; the ledger state
            // tells the next sender whether a provider call may have happened.
        }
    }

    private func processThrowing(id: String, entry: MessageStore.Entry?) async throws {
        guard let context = try await customers.sendContext(messageId: id), let m = OutboundMessage(hash: context.message) else {
            return try await ack(entry)
        }
        if m.state.isTerminal { return try await ack(entry) }
        let now = clock()
        guard let adapter = catalog[m.adapter] else {
            return try await store.finish(m, state: .failed, reason: "adapter_disabled", lastError: "adapter \(m.adapter) is not enabled", answer: nil, entry: entry, now: now)
        }
        if m.state == .sending {
            return try await reconcile(m, since: m.sendingSince ?? 0, owner: context.message["owner"], adapter: adapter, entry: entry)
        }
        if now - m.createdAt > settings.retry.maxAgeMs {
            return try await store.finish(m, state: .failed, reason: "expired", lastError: m.lastError, answer: nil, entry: entry, now: now)
        }
        if let expiry = m.expiresAt, now >= expiry {
            return try await store.finish(m, state: .skipped, reason: "campaign_expired", lastError: nil, answer: nil, entry: entry, now: now)
        }
        if let state = context.campaignState, state != "running", state != "completed" {
            // Paused: set aside at once, without waiting for rate slots or deferring; stopped: skipped.
            switch try await store.hold(m, entry: entry) {
            case .parked: return
            case .campaignStopped(let state):
                return try await store.finish(m, state: .skipped, reason: "campaign_\(state)", lastError: nil, answer: nil, entry: entry, now: now)
            default: break  // running again meanwhile: send as usual
            }
        }

        // Consent and address, decided now (not when the message was accepted).
        let customer = context.customer
        let identities = customer?.identities ?? []
        var consent = customer?.consent ?? [:]
        var decision = SendEligibility.decide(
            channel: m.channel, account: m.account, to: m.to, transactional: m.lane == .transactional, identities: identities, consent: consent,
            requireOptIn: settings.contactRules.requireOptIn)
        if case .send(let address) = decision, m.channel != "wechat", let optOut = try await customers.optOut(channel: m.channel, address: address) {
            // An unsubscribe or bounce recorded for the address itself (one-click links, receipts).
            consent[m.channel] = ConsentRecord(stored: optOut)
            decision = SendEligibility.decide(
                channel: m.channel, account: m.account, to: address, transactional: m.lane == .transactional, identities: identities, consent: consent,
                requireOptIn: settings.contactRules.requireOptIn)
        }
        guard case .send(let address) = decision else {
            // Consent revoked or the address gone since planning: a campaign tries its next channel.
            if case .skip(let reason) = decision { try await fallBackOrFinish(m, state: .skipped, reason: reason, lastError: nil, answer: nil, entry: entry) }
            Counter(label: "scrm_outbound_messages_total", dimensions: [("channel", m.channel), ("result", "skipped")]).increment()
            return
        }
        var reply: [String: String]?
        if let hours = adapter.renders.sessionWindowHours, let account = m.account {
            // Only inside the window the customer's last message opened (WeChat 48 h, Douyin 24 h).
            guard let session = try await customers.session(account: account, openid: address), session.lastInteractionAt >= now - Int64(hours) * 3_600_000 else {
                return try await fallBackOrFinish(m, state: .skipped, reason: "outside_session_window", lastError: nil, answer: nil, entry: entry)
            }
            if m.channel == "douyin" {
                guard let r = Self.douyinReply(session, accountOpenId: settings.douyinOpenIds[account] ?? "") else {
                    return try await fallBackOrFinish(m, state: .skipped, reason: "no_conversation", lastError: nil, answer: nil, entry: entry)
                }
                reply = r
            }
        }
        let marketing = m.lane == .bulk
        if marketing, let until = settings.contactRules.quietUntil(nowMs: now, zone: zone(customer?.timezone, account: m.account)) {
            return try await deferForContactRule(m, until: until, rule: "quiet_hours", entry: entry)
        }

        // The shared rate limits (the campaign's own cap first); a suspended adapter defers the message
        // without spending an attempt.
        if let campaign = m.campaign, let perSecond = context.campaignRate {
            _ = try await limiter.acquire(Keys.rateLimit(adapter: "campaign", scope: campaign), limit: RateLimit(perSecond: perSecond, burst: 1))
        }
        var grant = RateLimiter.Grant()
        let rateKey = rateLimitKey(adapter, m)
        if let limit = adapter.rateLimit {
            do {
                grant = try await limiter.acquire(rateKey, limit: limit.limit, probeHoldMs: adapter.callTimeoutMs + 5_000)
            } catch let s as RateLimiter.Suspended {
                let why = s.reason == .quota ? "adapter suspended" : "provider failing: circuit open"
                return try await deferOrExpire(m, until: clock() + s.remainingMs, lastError: m.lastError ?? why, reason: s.reason.rawValue, entry: entry)
            }
        }

        let attempt: Int
        let caps = marketing && !settings.contactRules.caps.isEmpty
        let contact = caps ? (m.customerId ?? Keys.contactSubject(channel: m.channel, address: address), settings.contactRules.capArguments(channel: m.channel)) : nil
        let claimedAt = clock()
        switch try await store.claim(id: m.id, campaign: m.campaign, owner: consumer, now: claimedAt, contact: contact, entry: entry) {
        case .missing, .done: return try await ack(entry)
        case .parked: return
        case .campaignStopped(let state):
            return try await store.finish(m, state: .skipped, reason: "campaign_\(state)", lastError: nil, answer: nil, entry: entry, now: clock())
        case .capped(let until): return try await deferForContactRule(m, until: until, rule: "frequency_cap", entry: entry)
        case .optedOut:  // not asked for here (the address's opt-out was read above); kept for completeness
            return try await fallBackOrFinish(m, state: .skipped, reason: "opted_out", lastError: nil, answer: nil, entry: entry, releaseCap: nil)
        case .inDoubt(let since): return try await reconcile(m, since: since, owner: context.message["owner"], adapter: adapter, entry: entry)
        case .claimed(let n): attempt = n
        }
        var payload = Self.payload(m, to: address)
        payload.reply = reply
        if let doubt = m.doubtSince, adapter.canLookUp {
            // An earlier call may have reached the provider: ask before sending again.
            switch await sender.lookup(payload, via: adapter, sinceMs: doubt) {
            case .seen(let providerId):
                Counter(label: "scrm_outbound_settled_total", dimensions: [("adapter", adapter.spec.name), ("provider", "saw")]).increment()
                try await store.complete(m, providerId: providerId.isEmpty ? nil : providerId, entry: entry, now: clock())
                activity?.outbound(channel: m.channel, result: "sent", atMs: clock())
                return
            case .notSeen:
                Counter(label: "scrm_outbound_settled_total", dimensions: [("adapter", adapter.spec.name), ("provider", "not_seen")]).increment()
            case .unknown(let why):
                let failure = SendFailure(errorClass: .retry, code: "lookup", message: why)
                return try await retry(m, attempt: attempt, failure: failure, notBefore: nil, entry: entry, outcomeUnknown: true)
            }
        }
        let outcome = await sender.send(payload, via: adapter, unsubscribeURL: unsubscribeURL(m, address: address))
        try await record(
            outcome, m, attempt: attempt, adapter: adapter, rateKey: rateKey, grant: grant, callStart: claimedAt, entry: entry, address: address,
            capSubject: contact?.0)
    }

    /// How an outbound customer-service message reads in the session: `{at, direction: out, type:
    /// custom.<msgtype>, message, data}` beside the inbound `{at, direction: in, type, data}`.
    static func sessionEntry(_ m: OutboundMessage, at: Int64) -> String {
        let content = m.content.flatMap { JSONValue.parse(Array($0.utf8)) }
        let type = content?.lookup("msgtype")?.scalarText ?? "text"
        let data = content ?? .object(["content": .string(m.text ?? "")])
        return JSONText.object([
            ("at", String(at)), ("direction", "\"out\""), ("type", JSONText.quote("custom.\(type)")), ("message", JSONText.quote(m.id)), ("data", data.text),
        ])
    }

    /// `capSubject`: whose frequency-cap slot the claim took; a message that certainly did not reach
    /// the person gives it back.
    func record(
        _ outcome: SendOutcome, _ m: OutboundMessage, attempt: Int, adapter: ResolvedAdapter, rateKey: String, grant: RateLimiter.Grant,
        callStart: Int64, entry: MessageStore.Entry?, address: String, capSubject: String?
    ) async throws {
        let now = clock()
        let name = adapter.spec.name
        // The circuit: provider failures count towards opening it; any real answer closes it.
        if adapter.rateLimit != nil {
            if case .failed(let f) = outcome, f.isProviderFailure {
                _ = try? await limiter.report(.providerFailed(probe: grant.probe), key: rateKey, adapter: name)
            } else if grant.wantsReport, outcome.isProviderAnswer {
                _ = try? await limiter.report(.succeeded, key: rateKey, adapter: name)
            }
        }
        switch outcome {
        case .accepted(let providerId):
            try await store.complete(m, providerId: providerId, entry: entry, now: now)
            if adapter.renders.sessionWindowHours != nil, let account = m.account {
                // A customer-service message is part of the conversation: the session shows it.
                _ = try? await customers.appendToSession(account: account, openid: address, entry: Self.sessionEntry(m, at: now))
            }
            Counter(label: "scrm_outbound_messages_total", dimensions: [("channel", m.channel), ("result", "sent")]).increment()
            activity?.outbound(channel: m.channel, result: "sent", atMs: now)
        case .failed(let f):
            Counter(label: "scrm_outbound_messages_total", dimensions: [("channel", m.channel), ("result", f.errorClass.rawValue)]).increment()
            if [.permanent, .optedOut, .badAddress].contains(f.errorClass) { activity?.outbound(channel: m.channel, result: "failed", atMs: now) }
            if f.code == "render" {
                // A variable the adapter needs is missing for this recipient: not on this channel, maybe on the next.
                return try await fallBackOrFinish(
                    m, state: .skipped, reason: "render: \(f.message)", lastError: nil, answer: nil, entry: entry, releaseCap: capSubject)
            }
            switch f.errorClass {
            case .permanent, .duplicate:  // duplicate answers are classified as accepted; never seen here
                try await store.finish(
                    m, state: .failed, reason: "permanent", lastError: f.description, answer: f.answer, entry: entry, now: now, releaseCap: capSubject)
            case .optedOut:
                // The provider says the person opted out: record it, so no later message calls the provider again.
                let state = m.channel == "email" ? "unsubscribed" : "opted_out"
                try await customers.recordOptOut(channel: m.channel, account: m.account, address: address, state: state, nowMs: now)
                try await fallBackOrFinish(m, state: .failed, reason: "opted_out", lastError: f.description, answer: f.answer, entry: entry, releaseCap: capSubject)
            case .badAddress:
                try await fallBackOrFinish(m, state: .failed, reason: "bad_address", lastError: f.description, answer: f.answer, entry: entry, releaseCap: capSubject)
            case .throttle:
                _ = try? await limiter.report(.throttled(retryAfterMs: f.retryAfterMs), key: rateKey, adapter: name)
                try await retry(m, attempt: attempt, failure: f, notBefore: f.retryAfterMs.map { now + $0 }, entry: entry)
            case .quota:
                let reset = RateLimiter.quotaResetMs(channel: adapter.spec.channel, nowMs: now)
                _ = try? await limiter.report(.quotaSpent(untilMs: reset), key: rateKey, adapter: name)
                try await deferOrExpire(m, until: reset, lastError: f.description, entry: entry)
            case .retry where f.outcomeUnknown:
                try await inDoubt(m, attempt: attempt, failure: f, adapter: adapter, callStart: callStart, entry: entry)
            case .retry, .tokenExpired:
                try await retry(m, attempt: attempt, failure: f, notBefore: f.retryAfterMs.map { now + $0 }, entry: entry)
            }
        }
    }

    /// A message its recipient cannot get on this channel (a recipient reason). A campaign's message
    /// moves to the campaign's next channel the recipient may get, under the same id and so the same
    /// ledger entry (one delivery at most); any other message, or one with no channel left, ends with
    /// `state` and `reason`.
    func fallBackOrFinish(
        _ m: OutboundMessage, state: OutboundMessage.State, reason: String, lastError: String?, answer: String?, entry: MessageStore.Entry?,
        releaseCap: String? = nil
    ) async throws {
        if m.campaign != nil, let campaigns, let next = try await campaigns.next(after: m) {
            if try await store.fallBack(m, to: next, reason: reason, entry: entry, now: clock(), releaseCap: releaseCap) {
                Counter(label: "scrm_outbound_fallbacks_total", dimensions: [("from", m.channel), ("to", next.channel)]).increment()
            }
            return
        }
        try await store.finish(m, state: state, reason: reason, lastError: lastError, answer: answer, entry: entry, now: clock(), releaseCap: releaseCap)
    }

    /// The request went out and no answer came back: the provider may have the message. Resent (with
    /// backoff) only while the provider's own dedup would drop a repeat of the first doubtful call;
    /// otherwise dead-lettered as `outcome_unknown` (at most once: replay sends it anyway).
    private func inDoubt(
        _ m: OutboundMessage, attempt: Int, failure f: SendFailure, adapter: ResolvedAdapter, callStart: Int64, entry: MessageStore.Entry?
    ) async throws {
        let now = clock()
        Counter(label: "scrm_outbound_in_doubt_total", dimensions: [("adapter", adapter.spec.name)]).increment()
        let since = min(m.doubtSince ?? callStart, callStart)
        if adapter.canLookUp {
            // Settled by asking the provider, once it has had time to record the call.
            return try await store.reschedule(
                m, at: max(now, since + settings.lookupDelayMs), lastError: f.description + " (the provider is asked before any resend)", entry: entry,
                now: now, doubtSince: since)
        }
        if let window = adapter.renders.providerDedupMs, let at = settings.retry.nextAttempt(
            attempts: attempt, createdAt: m.createdAt, now: now, notBefore: nil, random: Double.random(in: 0..<1)), at - since < window - 60_000
        {
            return try await store.reschedule(m, at: at, lastError: f.description + " (the provider deduplicates: sent again)", entry: entry, now: now, doubtSince: since)
        }
        try await store.finish(
            m, state: .failed, reason: "outcome_unknown",
            lastError: f.description + " (the provider may have taken it; not resent automatically: replay to send anyway)", answer: nil, entry: entry, now: now)
    }

    /// After failed attempt number `attempt`. `outcomeUnknown`: an earlier call may have reached the
    /// provider and asking did not settle it; the message keeps its doubt and, out of attempts, ends
    /// as `outcome_unknown`.
    private func retry(
        _ m: OutboundMessage, attempt: Int, failure f: SendFailure, notBefore: Int64?, entry: MessageStore.Entry?, outcomeUnknown: Bool = false
    ) async throws {
        let now = clock()
        if let at = settings.retry.nextAttempt(attempts: attempt, createdAt: m.createdAt, now: now, notBefore: notBefore, random: Double.random(in: 0..<1)) {
            try await store.reschedule(m, at: at, lastError: f.description, entry: entry, now: now, doubtSince: outcomeUnknown ? m.doubtSince : nil)
        } else {
            try await store.finish(
                m, state: .failed, reason: outcomeUnknown ? "outcome_unknown" : "retries_exhausted", lastError: f.description, answer: f.answer, entry: entry,
                now: now)
        }
    }

    /// A spent quota or an open circuit: the message waits without spending an attempt, unless that is
    /// past its maximum age (then dead-lettered with `reason`).
    private func deferOrExpire(_ m: OutboundMessage, until: Int64, lastError: String, reason: String = "quota", entry: MessageStore.Entry?) async throws {
        let now = clock()
        if until - m.createdAt <= settings.retry.maxAgeMs {
            try await store.reschedule(m, at: until, lastError: lastError, entry: entry, now: now)
        } else {
            try await store.finish(m, state: .failed, reason: reason, lastError: lastError, answer: nil, entry: entry, now: now)
        }
    }

    /// Quiet hours or a frequency cap: the message waits (no attempt spent) until the rule allows it,
    /// unless that is past its campaign's expiry or its maximum age; then it is skipped with the reason.
    func deferForContactRule(_ m: OutboundMessage, until: Int64, rule: String, entry: MessageStore.Entry?) async throws {
        let now = clock()
        Counter(label: "scrm_outbound_deferred_total", dimensions: [("rule", rule)]).increment()
        let limit = min(m.expiresAt ?? Int64.max, m.createdAt + settings.retry.maxAgeMs)
        if until >= limit {
            return try await store.finish(m, state: .skipped, reason: "expired_while_deferred:\(rule)", lastError: nil, answer: nil, entry: entry, now: now)
        }
        try await store.reschedule(m, at: until, lastError: "deferred: \(rule)", entry: entry, now: now, deferred: true)
    }

    func zone(_ customerZone: String?, account: String?) -> TimeZone {
        for name in [customerZone, account.flatMap { settings.accountTimezones[$0] }, settings.contactRules.timezone] {
            if let name, let z = zones.zone(name) { return z }
        }
        return TimeZone(secondsFromGMT: 8 * 3600)!
    }

    /// A message another sender claimed and never finished. Its provider call may or may not have
    /// happened: ask the provider where it offers a lookup; else repeat it only while the provider
    /// would drop a duplicate; otherwise dead-letter it.
    private func reconcile(_ m: OutboundMessage, since: Int64, owner: String?, adapter: ResolvedAdapter, entry: MessageStore.Entry?) async throws {
        let now = clock()
        // Probably still in flight elsewhere: leave the entry pending (unless that sender is gone).
        let ownerGone = if let owner { try await queue.isDead(owner) } else { false }
        if now - since < settings.claimIdleMs / 2, !ownerGone { return }
        Counter(label: "scrm_outbound_in_doubt_total", dimensions: [("adapter", adapter.spec.name)]).increment()
        // The provider's window runs from the first call whose outcome is unknown.
        let first = min(m.doubtSince ?? since, since)
        if adapter.canLookUp {
            return try await store.reschedule(
                m, at: max(now, first + settings.lookupDelayMs), lastError: "a sender stopped during the provider call (the provider is asked before any resend)",
                entry: entry, now: now, doubtSince: first)
        }
        if let window = adapter.renders.providerDedupMs, now - first < window - 60_000 {
            try await store.reschedule(m, at: now, lastError: "resent after a crash (provider deduplicates)", entry: entry, now: now, doubtSince: first)
        } else {
            try await store.finish(
                m, state: .failed, reason: "outcome_unknown",
                lastError: "a sender stopped during the provider call; not resent automatically (replay to send anyway)", answer: nil, entry: entry,
                now: now)
        }
    }

    func ack(_ entry: MessageStore.Entry?) async throws {
        guard let entry else { return }
        try await queue.ack(entry)
    }

    private func rateLimitKey(_ adapter: ResolvedAdapter, _ m: OutboundMessage) -> String { Self.rateLimitKey(adapter, account: m.account) }

    /// The limit a message through `adapter` counts against: the adapter's, its sender's, or its account's.
    static func rateLimitKey(_ adapter: ResolvedAdapter, account: String?) -> String {
        switch adapter.rateLimit?.scope {
        case .account: return Keys.rateLimit(adapter: adapter.spec.name, scope: account ?? "")
        case .sender: return Keys.rateLimit(adapter: adapter.spec.name, scope: adapter.setting(named: "from") ?? "")
        case .adapter, nil: return Keys.rateLimit(adapter: adapter.spec.name)
        }
    }

    /// What the adapter renders the provider request from.
    static func payload(_ m: OutboundMessage, to address: String) -> OutboundPayload {
        OutboundPayload(
            messageId: m.id, to: address, account: m.account, template: m.template, subject: m.subject, text: m.text, html: m.html, link: m.link,
            variables: variables(m.variables), content: m.content.flatMap { JSONValue.parse(Array($0.utf8)) })
    }

    /// An email's one-click unsubscribe link (List-Unsubscribe).
    func unsubscribeURL(_ m: OutboundMessage, address: String) -> String? {
        m.channel == "email" ? links?.url(channel: "email", address: address) : nil
    }

    static func variables(_ json: String) -> [String: JSONValue] {
        if case .object(let o)? = JSONValue.parse(Array(json.utf8)) { return o }
        return [:]
    }
}

/// What `CampaignRendering.materialize` did with a batch's references.
public struct MaterializedBatch: Sendable {
    /// Entries (`MessageStore.Entry.key`) settled instead (acknowledged): a recipient who can get none
    /// of the channels, one erased, or a second reference to one already queued.
    public var settled: Set<String> = []
    /// Entry key (`MessageStore.Entry.key`) -> the send context of a message made now from what was read to make it (nothing
    /// more to read before sending; the claim checks the campaign's state again).
    public var made: [String: SendContext] = [:]

    public init() {}
}

/// Campaign messages rendered at send time; Campaigns provides it (`CampaignRenderer`).
public protocol CampaignRendering: Sendable {
    /// Makes the messages of the campaign references among `entries` (rendered with each recipient's
    /// data as it is now) before they are sent. Throws on Redis trouble only; the entries then stay
    /// pending.
    func materialize(_ entries: [(entry: MessageStore.Entry, messageId: String)], group: String) async throws -> MaterializedBatch

    /// For a campaign message its recipient cannot get on its channel: the same message (id, campaign,
    /// variant, creation time) rendered for the next channel in the campaign's order that the recipient
    /// may get, read fresh (consent, addresses, profile); nil when none is left. The engine calls it
    /// only for recipient reasons.
    func next(after m: OutboundMessage) async throws -> OutboundMessage?
}
