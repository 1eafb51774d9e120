import GatewayCore
import RedisClient

/// Outbound messages in Redis: accept (idempotent), the send ledger (claim before the provider call,
/// complete after), retries, dead letters. Every state change that also moves the queue is one Lua
/// script, so a crash leaves either the old state or the new one.
public struct MessageStore: Sendable {
    public static let retentionMs: Int64 = 30 * 86_400_000
    /// How long a customer's message index (`Keys.customerMessages`) lives after its last message: a
    /// message is kept `retentionMs` after it finishes, which can be well after it was queued.
    public static let customerIndexTTLMs: Int64 = 2 * retentionMs
    public static let idempotencyTTLSeconds = 30 * 86_400

    let redis: RedisPool

    public init(redis: RedisPool) { self.redis = redis }

    /// Where message keys go: on a cluster a message is in its recipient's slot (`MessageId`).
    public var layout: IndexLayout { redis.isCluster ? .perSlot : .single }

    /// A new message's id, for a customer id or a `Keys.contactSubject` (`MessageId.make`).
    public func newId(now: Int64, recipient: String?) -> String { MessageId.make(ULID.make(milliseconds: now), recipient: recipient, layout: layout) }

    public enum Accepted: Equatable, Sendable {
        case created(String)
        /// The idempotency key was used before: the first message's id.
        case duplicate(String)
    }

    public func accept(_ m: OutboundMessage) async throws -> Accepted {
        if redis.isCluster { return try await acceptInSteps(m) }
        let r = try await redis.fcall(
            StoreFunctions.library, "message_accept",
            keys: [
                Keys.idempotency(m.idempotencyKey), Keys.message(m.id), redis.streams.outbound(channel: m.channel, lane: m.lane, message: m.id),
                m.customerId.map(Keys.customerMessages) ?? "",
            ],
            args: [m.id, String(Self.idempotencyTTLSeconds), String(m.createdAt), String(Self.customerIndexTTLMs)] + m.fields.flatMap { [$0.0, $0.1] }
        ).array ?? []
        let id = r.count > 1 ? r[1].string ?? m.id : m.id
        return r.first?.int == 1 ? .created(id) : .duplicate(id)
    }

    /// What a campaign reference became at send time (`CampaignRendering.materialize`).
    public enum Made: Sendable {
        case message(OutboundMessage)
        /// No channel the recipient may get: the channel that refused (or '') and why.
        case refused(channel: String, reason: String)
    }

    /// What became of a reference in `materialize`.
    public enum Materialized: Sendable, Equatable {
        /// Its message was created now, as given.
        case created
        /// A message made from this entry before (by a sender that stopped): go on with it as stored.
        case existing
        /// Refused, a repeat, or its recipient erased: counted, and the entry acknowledged.
        case settled
    }

    /// Records what campaign references became, in one step (`campaign_message_materialize`): each
    /// message created once and indexed under its customer, each refusal, repeat and recipient erased
    /// since the read counted and its entry acknowledged.
    public func materialize(_ made: [(entry: Entry, messageId: String, made: Made)], group: String) async throws -> [Materialized] {
        if redis.isCluster { return try await materializeInSteps(made) }
        var keys = [String](), args = [group, String(Self.customerIndexTTLMs)]
        keys.reserveCapacity(made.count * 5)
        args.reserveCapacity(made.count * 40)
        for (entry, id, what) in made {
            guard let ref = entry.reference else { continue }
            keys += [Keys.message(id), Keys.customerMessages(ref.customer), Keys.campaignStats(ref.campaign), entry.stream, Keys.customer(ref.customer)]
            switch what {
            case .message(let m):
                let fields = m.fields
                args += ["q", entry.id, id, ref.variant, m.channel, String(fields.count * 2)]
                for (k, v) in fields { args += [k, v] }
            case .refused(let channel, let reason):
                args += ["s", entry.id, id, ref.variant, channel, reason]
            }
        }
        guard !keys.isEmpty else { return [] }
        let r = try await redis.fcall(StoreFunctions.library, "campaign_message_materialize", keys: keys, args: args).array ?? []
        return r.map { $0.int == 2 ? .created : $0.int == 1 ? .existing : .settled }
    }

    /// The message's stored fields as they are (empty when it is gone).
    public func fields(_ id: String) async throws -> [String: String] { try await redis.send("HGETALL", Keys.message(id)).dictionary }

    /// One field of a message (nil: the message or the field is not there).
    public func field(_ id: String, _ name: String) async throws -> String? { try await redis.send("HGET", Keys.message(id), name).string }

    public func get(_ id: String) async throws -> OutboundMessage? {
        OutboundMessage(hash: try await redis.send("HGETALL", Keys.message(id)).dictionary)
    }

    /// A customer's messages still kept, newest first (by creation time, then id): up to `limit` of
    /// them after `before`, and the cursor of the next page when there are more. Messages whose
    /// record has expired are left out.
    public func customerMessages(_ customer: String, limit: Int, before: PageCursor?) async throws -> (messages: [OutboundMessage], next: PageCursor?) {
        let page = try await redis.newestFirst(Keys.customerMessages(customer), limit: limit, before: before)
        let hashes = page.ids.isEmpty ? [] : try await redis.pipelineChecked(page.ids.map { ["HGETALL", Keys.message($0)] })
        return (hashes.compactMap { OutboundMessage(hash: $0.dictionary) }, page.next)
    }

    public enum Claim: Equatable, Sendable {
        /// Ours to send; this is attempt number `attempt`.
        case claimed(attempt: Int)
        /// Already sent, failed or skipped: nothing to do.
        case done
        /// Another sender claimed it at `since` and never finished: the outcome is unknown.
        case inDoubt(since: Int64)
        case missing
        /// Its campaign is paused: set aside (the entry is acknowledged) until resume.
        case parked
        /// Its campaign was cancelled, expired or completed: the message must not go.
        case campaignStopped(state: String)
        /// A frequency cap is full: the message may go at `untilMs`.
        case capped(untilMs: Int64)
        /// The address has an opt-out recorded (its `state|ms`); nothing was claimed.
        case optedOut(String)
    }

    /// The ledger claim, made before the provider call.
    public func claim(_ id: String, owner: String, now: Int64) async throws -> Claim {
        try await claim(id: id, campaign: nil, owner: owner, now: now, contact: nil, entry: nil)
    }

    /// The ledger claim with the send-time rules in the same atomic step: a paused campaign parks the
    /// message, a stopped one refuses it, and `contact` (the recipient's history key subject plus
    /// `ContactRules.capArguments`) checks the frequency caps and records this send in the history.
    public func claim(id: String, campaign: String?, owner: String, now: Int64, contact: (subject: String, caps: [String])?, entry: Entry?)
        async throws -> Claim
    {
        let request = ClaimRequest(id: id, campaign: campaign, entry: entry, contactSubject: contact?.subject, optOutKey: nil)
        return try await claimBatch([request], owner: owner, now: now, caps: contact?.caps ?? ["0"])[0]
    }

    /// One message of a batch claim.
    public struct ClaimRequest: Sendable {
        public let id: String
        public let campaign: String?
        public let entry: Entry?
        /// Whose contact history the frequency caps are checked against (nil: no caps, e.g. transactional).
        public let contactSubject: String?
        /// The address's opt-out key (`Keys.optOut`): a record there refuses the claim (`.optedOut`).
        public let optOutKey: String?

        public init(id: String, campaign: String?, entry: Entry?, contactSubject: String?, optOutKey: String?) {
            self.id = id
            self.campaign = campaign
            self.entry = entry
            self.contactSubject = contactSubject
            self.optOutKey = optOutKey
        }
    }

    /// The ledger claims of a batch of messages in one atomic step (`message_claim_batch` in
    /// `Lua/outbound.lua`), one `Claim` per request in order. `caps`: `ContactRules.capArguments` for
    /// the batch's channel (`["0"]` = none).
    public func claimBatch(_ requests: [ClaimRequest], owner: String, now: Int64, caps: [String]) async throws -> [Claim] {
        guard !requests.isEmpty else { return [] }
        if redis.isCluster { return try await claimInSteps(requests, owner: owner, now: now, caps: caps) }
        var keys = [String]()
        keys.reserveCapacity(requests.count * 6)
        var args = [String(now), owner, Keys.outboundGroup] + caps
        for r in requests {
            keys += [
                Keys.message(r.id), r.campaign.map(Keys.campaign) ?? "", r.campaign.map(Keys.campaignParked) ?? "", r.entry?.stream ?? "",
                r.contactSubject.map(Keys.contactHistory) ?? "", r.optOutKey ?? "",
            ]
            args += [r.id, r.entry?.id ?? ""]
        }
        let reply = try await redis.fcall(StoreFunctions.library, "message_claim_batch", keys: keys, args: args).array ?? []
        return requests.indices.map { i in
            Self.claim(code: reply.count > 2 * i ? reply[2 * i].int : nil, value: reply.count > 2 * i + 1 ? reply[2 * i + 1].string ?? "" : "", now: now)
        }
    }

    /// A claim function's answer for one message: its code and value.
    static func claim(code: Int?, value: String, now: Int64) -> Claim {
        switch code {
        case 1: return .claimed(attempt: Int(value) ?? 1)
        case 2: return .inDoubt(since: Int64(value) ?? 0)
        case 3: return .parked
        case 4: return .campaignStopped(state: value)
        case 5: return .capped(untilMs: Int64(value) ?? now)
        case 6: return .optedOut(value)
        case -1: return .missing
        default: return .done
        }
    }

    /// For a campaign's message whose campaign is not running: parks it (paused) or reports the state
    /// (stopped) in one atomic step; `.done` when the campaign runs again and the message may go on.
    public func hold(_ m: OutboundMessage, entry: Entry?) async throws -> Claim {
        guard let campaign = m.campaign else { return .done }
        if redis.isCluster { return try await holdInSteps(m, campaign: campaign, entry: entry) }
        let r = try await redis.fcall(
            StoreFunctions.library, "message_hold", keys: [Keys.campaign(campaign), Keys.campaignParked(campaign), entry?.stream ?? ""],
            args: [m.id, entry?.id ?? "", Keys.outboundGroup]
        ).array ?? []
        switch r.first?.int {
        case 3: return .parked
        case 4: return .campaignStopped(state: r.count > 1 ? r[1].string ?? "" : "")
        default: return .done
        }
    }

    /// The stream entry a worker is holding (acknowledged with the state change).
    public struct Entry: Sendable, Equatable {
        public let stream: String
        public let id: String
        /// Set when the entry is a campaign recipient queued as a reference (`campaign_plan_chunk`):
        /// the message is made (rendered) when a sender takes it.
        public let reference: Reference?

        public init(stream: String, id: String, reference: Reference? = nil) {
            self.stream = stream
            self.id = id
            self.reference = reference
        }

        /// The entry among those of every stream: a batch read from several partitions of a queue
        /// may hold equal entry ids (`<ms>-<seq>` is per stream).
        public var key: String { stream + " " + id }
    }

    /// A campaign recipient as the planner queues it: about 120 bytes on the stream instead of a
    /// rendered message (the recipient's channel, address and content are decided when it is sent).
    public struct Reference: Sendable, Equatable {
        public let campaign: String
        public let variant: String
        public let customer: String
        /// The channel to try first (later ones in the variant's order follow).
        public let channel: String
        /// When it was planned (the gateway's clock, ms): the message's creation time.
        public let queuedAt: Int64

        public init(campaign: String, variant: String, customer: String, channel: String, queuedAt: Int64) {
            self.campaign = campaign
            self.variant = variant
            self.customer = customer
            self.channel = channel
            self.queuedAt = queuedAt
        }

        /// The stream entry's fields, as `campaign_plan_chunk` writes them.
        public init?(fields f: [String: String]) {
            guard let c = f["c"], let v = f["v"], let u = f["u"], let ch = f["ch"], let t = f["t"].flatMap({ Int64($0) }) else { return nil }
            self.init(campaign: c, variant: v, customer: u, channel: ch, queuedAt: t)
        }
    }

    /// Marks the message sent; a campaign's message also records the exposure its conversions are
    /// attributed by (`Keys.customerCampaigns`).
    public func complete(_ m: OutboundMessage, providerId: String?, entry: Entry?, now: Int64) async throws {
        try await completeBatch([(m, providerId, entry)], now: now)
    }

    /// Marks messages the provider took as sent, each stream entry acknowledged, in one atomic step
    /// (`message_complete_batch` in `Lua/outbound.lua`).
    public func completeBatch(_ sent: [(message: OutboundMessage, providerId: String?, entry: Entry?)], now: Int64) async throws {
        guard !sent.isEmpty else { return }
        if redis.isCluster { return try await completeInSteps(sent, now: now) }
        var keys = [String]()
        keys.reserveCapacity(sent.count * 7)
        var args = [Keys.outboundGroup, String(now), String(Self.retentionMs)]
        for (m, providerId, entry) in sent {
            keys += [
                Keys.message(m.id), entry?.stream ?? "", providerId.map { Keys.providerMessage(adapter: m.adapter, providerId: $0) } ?? "",
                m.campaign != nil ? m.customerId.map(Keys.customerCampaigns) ?? "" : "",
            ] + Self.counterKeys(m)
            args += [entry?.id ?? "", providerId ?? "", m.id]
        }
        _ = try await redis.fcall(StoreFunctions.library, "message_complete_batch", keys: keys, args: args)
    }


    /// `deferred`: held back by a contact rule (cap, quiet hours, suspended adapter), not a failure.
    /// `doubtSince`: a provider call's outcome is unknown; kept (the earliest) so resends stay inside the
    /// provider's dedup window.
    public func reschedule(
        _ m: OutboundMessage, at dueAt: Int64, lastError: String?, entry: Entry?, now: Int64, deferred: Bool = false, doubtSince: Int64? = nil
    ) async throws {
        if redis.isCluster {
            return try await rescheduleInSteps(m, at: dueAt, lastError: lastError, entry: entry, now: now, deferred: deferred, doubtSince: doubtSince)
        }
        _ = try await redis.fcall(
            StoreFunctions.library, "message_reschedule", keys: [Keys.message(m.id), entry?.stream ?? "", Keys.outboundRetries] + Self.counterKeys(m),
            args: [
                entry?.id ?? "", Keys.outboundGroup, String(now), String(dueAt), lastError ?? "", m.id, deferred ? "1" : "0",
                doubtSince.map(String.init) ?? "",
            ])
    }

    /// Ends a message as failed (to the dead-letter stream) or skipped (with its reason only).
    /// `releaseCap`: the contact-history subject whose frequency-cap slot the message took at claim,
    /// given back because it certainly did not reach the person.
    public func finish(
        _ m: OutboundMessage, state: OutboundMessage.State, reason: String, lastError: String?, answer: String?, entry: Entry?, now: Int64,
        releaseCap: String? = nil
    ) async throws {
        if redis.isCluster {
            return try await finishInSteps(
                m, state: state, reason: reason, lastError: lastError, answer: answer, entry: entry, now: now, releaseCap: releaseCap)
        }
        let keys = [Keys.message(m.id), entry?.stream ?? "", Keys.deadLetters] + Self.counterKeys(m) + [releaseCap.map(Keys.contactHistory) ?? ""]
        _ = try await redis.fcall(
            StoreFunctions.library, "message_finish", keys: keys,
            args: [
                entry?.id ?? "", Keys.outboundGroup, String(now), state.rawValue, reason, lastError ?? "", answer ?? "", m.id, m.channel, m.adapter,
                state == .failed ? "1" : "0", String(Self.retentionMs),
            ])
    }

    /// Moves a campaign message its recipient cannot get on `m.channel` (a recipient `reason`) to
    /// `next`: the same message id rendered for the campaign's next channel (see `message_fall_back`
    /// in `Lua/outbound.lua`). False when the message had meanwhile ended or moved on.
    public func fallBack(_ m: OutboundMessage, to next: OutboundMessage, reason: String, entry: Entry?, now: Int64, releaseCap: String? = nil)
        async throws -> Bool
    {
        guard let campaign = m.campaign, next.id == m.id else { return false }
        var keys = [Keys.message(m.id), redis.streams.outbound(channel: next.channel, lane: next.lane, message: m.id), Keys.campaignStats(campaign), entry?.stream ?? ""]
        if let releaseCap { keys.append(Keys.contactHistory(releaseCap)) }
        let content = next.fields.filter { !["id", "state", "attempts", "createdAt", "updatedAt", "campaign", "customerId"].contains($0.0) }
        let args = [m.channel, reason, String(now), entry?.id ?? "", Keys.outboundGroup, m.id, next.channel, m.variant ?? ""] + content.flatMap { [$0.0, $0.1] }
        if redis.isCluster { return try await fallBackInSteps(m, to: next, args: args, entry: entry, releaseCap: releaseCap) }
        let r = try await redis.fcall(StoreFunctions.library, "message_fall_back", keys: keys, args: args)
        return r.int == 1
    }

    /// Moves retries that are due back onto their streams; returns how many were queued. The messages'
    /// streams are read first, so the function gets every key it touches.
    public func moveDueRetries(now: Int64, limit: Int = 500) async throws -> Int {
        if redis.isCluster { return try await requeueInSteps(now: now, limit: limit) }
        let ids = try await redis.send("ZRANGEBYSCORE", Keys.outboundRetries, "-inf", String(now), "LIMIT", "0", String(limit)).strings
        guard !ids.isEmpty else { return 0 }
        let keys = [Keys.outboundRetries] + (try await queueKeys(ids))
        return try await redis.fcall(StoreFunctions.library, "message_requeue_due", keys: keys, args: ids).int ?? 0
    }

    /// Per message, its key and the stream it is queued on ('' when the message is gone), read from its
    /// channel and lane (which never change): the keys a function that puts messages back needs.
    public func queueKeys(_ ids: [String]) async throws -> [String] {
        zip(ids, try await queues(ids)).flatMap { id, q in [Keys.message(id), q.stream ?? ""] }
    }

    /// Per message, the stream it is queued on (its channel's, for its lane; nil when the message is
    /// gone) and the values of `fields` (nil where absent), one pipelined read.
    func queues(_ ids: [String], with fields: [String] = []) async throws -> [(stream: String?, fields: [String?])] {
        let streams = redis.streams
        return zip(ids, try await redis.pipelineChecked(ids.map { ["HMGET", Keys.message($0), "channel", "lane"] + fields })).map { id, reply in
            let f = (reply.array ?? []).map(\.string)
            let lane = f.count > 1 ? f[1].flatMap(OutboundMessage.Lane.init(rawValue:)) ?? .bulk : .bulk
            let stream = f.first.flatMap { $0 }.map { streams.outbound(channel: $0, lane: lane, message: id) }
            return (stream, f.count > 2 ? Array(f[2...]) : fields.map { _ in nil })
        }
    }

    /// The counters a message's state change moves (`countTransition` in `Lua/outbound.lua`): its
    /// campaign's stats and sends per second, its journey step's stats; '' where it has none.
    static func counterKeys(_ m: OutboundMessage) -> [String] { counterKeys(campaign: m.campaign, journey: m.journey) }

    /// The counters a message's state change moves, by its campaign and journey (`<journey>:<step>`):
    /// the campaign's stats, its sends per second, the journey's stats ('' = none).
    static func counterKeys(campaign: String?, journey: String?) -> [String] {
        [campaign.map(Keys.campaignStats) ?? "", campaign.map(Keys.campaignSendRate) ?? "", journey.flatMap(OutboundMessage.journeyStep).map { Keys.journeyStats($0.journey) } ?? ""]
    }

    // MARK: dead letters

    public struct DeadLetter: Sendable, Equatable {
        public let entryId: String
        public let messageId: String
        public let channel: String
        public let adapter: String
        public let reason: String
        public let error: String
        public let answer: String
        public let at: Int64
    }

    /// How many dead letters wait (replayed or discarded ones leave the stream).
    /// How many entries wait on a channel's queues (bulk, transactional).
    public func queueDepths(channel: String) async throws -> (bulk: Int, transactional: Int) {
        let bulk = redis.streams.all(Keys.outboundStream(channel: channel, lane: .bulk))
        let tx = redis.streams.all(Keys.outboundStream(channel: channel, lane: .transactional))
        let r = try await redis.pipelineChecked((bulk + tx).map { ["XLEN", $0] }).map { $0.int ?? 0 }
        return (r.prefix(bulk.count).reduce(0, +), r.dropFirst(bulk.count).reduce(0, +))
    }

    /// A send queue carried over from a single Redis that still holds entries (`RedisPool.carriedOver`).
    public func carriedOver(_ queue: String) async -> String? { await redis.carriedOver(queue) }

    public func deadLetterCount() async throws -> Int { try await redis.send("XLEN", Keys.deadLetters).int ?? 0 }

    public func deadLetters(limit: Int, after: String? = nil) async throws -> [DeadLetter] {
        let start = after.map { "(" + $0 } ?? "+"
        let r = try await redis.send(["XREVRANGE", Keys.deadLetters, start, "-", "COUNT", String(limit)])
        return (r.array ?? []).compactMap(Self.letter)
    }

    public func deadLetter(_ entryId: String) async throws -> DeadLetter? {
        let r = try await redis.send(["XRANGE", Keys.deadLetters, entryId, entryId])
        return r.array?.first.flatMap(Self.letter)
    }

    /// One stream entry `[id, [field, value, ...]]` as a dead letter.
    private static func letter(_ entry: RedisValue) -> DeadLetter? {
        guard let parts = entry.array, parts.count == 2, let id = parts[0].string else { return nil }
        let f = parts[1].dictionary
        return DeadLetter(
            entryId: id, messageId: f["id"] ?? "", channel: f["channel"] ?? "", adapter: f["adapter"] ?? "", reason: f["reason"] ?? "",
            error: f["error"] ?? "", answer: f["answer"] ?? "", at: Int64(f["at"] ?? "") ?? 0)
    }

    /// Puts a dead letter's message back on its queue (a deliberate resend) and removes the letter.
    public func replay(_ letter: DeadLetter, message m: OutboundMessage, now: Int64) async throws -> Bool {
        if redis.isCluster { return try await replayInSteps(letter, message: m, now: now) }
        return try await redis.fcall(
            StoreFunctions.library, "message_replay",
            keys: [Keys.deadLetters, Keys.message(m.id), redis.streams.outbound(channel: m.channel, lane: m.lane, message: m.id)] + Self.counterKeys(m),
            args: [letter.entryId, String(now), m.id]
        ).int == 1
    }

    public func discard(_ entryId: String) async throws -> Bool {
        try await redis.send("XDEL", Keys.deadLetters, entryId).int == 1
    }
}
