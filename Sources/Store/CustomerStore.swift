import GatewayCore
import RedisClient

/// Customers, identities, timelines and sessions in Redis.
public final class CustomerStore: Sendable {
    public let redis: RedisPool
    let timelineCap: Int
    /// Where index entries go (one shard on a single Redis, one per slot on a cluster), and the
    /// attribute schema the sharded functions get.
    public let shards: IndexShards
    /// Ingest as a chain of single-slot steps (`ingestInSteps`): always on a cluster; on a single
    /// Redis when `webhooks.ingestInSteps` says so.
    let ingestsInSteps: Bool
    let sessionTTLSeconds: Int
    let sessionMessageCap: Int
    let nonceTTLSeconds: Int
    let dedupTTLSeconds: Int
    let streamMaxLen: Int
    public let attributes: CustomerAttributes
    /// Where opt-outs are kept (keyed hashes of the addresses).
    public let suppression: AddressSuppression

    public init(redis: RedisPool, config: GatewayConfig) {
        self.redis = redis
        shards = IndexShards(redis: redis, attributes: config.customers.attributes)
        ingestsInSteps = config.webhooks.ingestInSteps || redis.isCluster
        attributes = config.customers.attributes
        suppression = AddressSuppression(config)
        timelineCap = config.customers.timelineCap
        sessionTTLSeconds = config.sessions.windowHours * 3600
        sessionMessageCap = config.sessions.messageCap
        nonceTTLSeconds = config.webhooks.nonceTTLSeconds
        dedupTTLSeconds = config.webhooks.dedupTTLSeconds
        streamMaxLen = config.streams.inboundMaxLen
    }

    public enum IngestOutcome: Sendable, Equatable {
        /// Stored; `customerId` is empty for callbacks that belong to no follower.
        case stored(customerId: String, created: Bool)
        /// A retry of a callback already stored: answer with the reply given then.
        case duplicate(reply: String)
        /// The timestamp and nonce were used by another request (another body or query).
        case replay
        /// The very same request again (same query and body): answer with the first reply.
        case retry(reply: String)
    }

    /// Applies a plan in one atomic function call (`customer_ingest`): nothing is stored unless all of it is.
    public func ingest(_ plan: IngestPlan) async throws -> IngestOutcome {
        if ingestsInSteps { return try await ingestInSteps(plan) }
        let identity = plan.identity
        let session = plan.sessionOpenId
        // With no nonce key the dedup key is the replay guard too: it lives as long as a nonce would.
        let dedupTTL = plan.nonceKey == nil ? max(dedupTTLSeconds, nonceTTLSeconds) : dedupTTLSeconds
        let keys = [
            plan.nonceKey ?? "", plan.dedupKey, identity.map(Keys.identity) ?? "", plan.sceneCount?.statsKey ?? "",
            session.map { Keys.session(account: plan.account, openid: $0) } ?? "",
            session.map { Keys.sessionMessages(account: plan.account, openid: $0) } ?? "",
            identity.map { Keys.sessionDedup(account: plan.account, openid: $0.value) } ?? "", Keys.inboundStream,
        ]
        let args: [String] = [
            String(plan.now), String(nonceTTLSeconds), String(dedupTTL), plan.reply, ULID.make(milliseconds: plan.now),
            identity?.storageForm ?? "", plan.unionId?.storageForm ?? "", plan.consent?.field ?? "", plan.consent?.value ?? "",
            plan.timelineEntry, String(timelineCap), plan.sessionMessage, String(sessionTTLSeconds), String(sessionMessageCap),
            String(streamMaxLen), plan.interactionType, plan.account, plan.payload, plan.replyMessage ?? "", plan.fingerprint,
            plan.sceneCount?.kind.rawValue ?? "", plan.sceneCount?.scene ?? "", plan.sceneCount?.sourceField ?? "", plan.owner ?? "",
        ] + plan.tags
        let reply = try await redis.fcall(StoreFunctions.library, "customer_ingest", keys: keys, args: args).array ?? []
        switch reply.first?.string {
        case "replay": return .replay
        case "retry": return .retry(reply: reply.count > 2 ? reply[2].string ?? "" : "")
        case "dup": return .duplicate(reply: reply.count > 2 ? reply[2].string ?? "" : "")
        default: return .stored(customerId: reply.count > 1 ? reply[1].string ?? "" : "", created: reply.count > 3 && reply[3].int == 1)
        }
    }

    public enum Lookup: Sendable, Equatable {
        case found(Customer)
        case merged(into: String)
        case notFound
    }

    /// With `nowMs`, the score is the one the customer has then (decayed since it last changed).
    public func customer(id: String, nowMs: Int64? = nil) async throws -> Lookup {
        guard ULID.isValid(id) else { return .notFound }
        let r = try await redis.pipelineChecked([
            ["HGETALL", Keys.customer(id)], ["SMEMBERS", Keys.customerIdentities(id)], ["SMEMBERS", Keys.customerTags(id)],
        ])
        var hash = r[0].dictionary
        if let target = hash["mergedInto"] { return .merged(into: try await resolve(target)) }
        guard hash["createdAt"] != nil else { return .notFound }
        if let nowMs, hash["score"] != nil, let score = try await ScoreStore(redis: redis).current([id], nowMs: nowMs).first ?? nil {
            hash["score"] = String(score)
        }
        return .found(Customer(id: id, hash: hash, identities: r[1].strings.compactMap(Identity.init(storageForm:)), tags: r[2].strings))
    }

    /// Whether the id names a customer record (a live one or a merged one's redirect).
    public func exists(_ id: String) async throws -> Bool {
        ULID.isValid(id) ? try await redis.send("EXISTS", Keys.customer(id)).int == 1 : false
    }

    /// Follows merge redirects to the surviving id.
    func resolve(_ id: String) async throws -> String { try await Self.resolve(id, redis: redis) }

    /// Follows merge redirects (at most 16) to the surviving id.
    static func resolve(_ id: String, redis: RedisPool) async throws -> String {
        var current = id
        for _ in 0..<16 {
            guard let next = try await redis.send("HGET", Keys.customer(current), "mergedInto").string else { return current }
            current = next
        }
        return current
    }

    /// The customer id that holds an identity, if any (already following merges).
    public func lookup(_ identity: Identity) async throws -> String? {
        guard let id = try await redis.send("GET", Keys.identity(identity)).string else { return nil }
        return try await resolve(id)
    }

    /// A follower of `account` as WeChat's user API reports it: created (subscribed) when new, its
    /// profile fields stored as `profile.<name>`, its unionid bound (merging customers it links).
    /// Returns the customer id and whether it was created.
    public func upsertFollower(account: String, openid: String, unionid: String?, profile: [String: String], nowMs: Int64) async throws
        -> (id: String, created: Bool)
    {
        let openidIdentity = Identity(kind: .openid, account: account, value: openid)
        if redis.isCluster { return try await upsertFollowerInSteps(openidIdentity, unionid: unionid, profile: profile, nowMs: nowMs) }
        let union = unionid.flatMap { $0.isEmpty ? nil : Identity(kind: .unionid, value: $0).storageForm } ?? ""
        let r = try await redis.fcall(
            StoreFunctions.library, "customer_upsert_follower", keys: [Keys.identity(openidIdentity)],
            args: [
                ULID.make(milliseconds: nowMs), openidIdentity.storageForm, String(nowMs), ConsentRecord.field("wechat:\(account)"), ConsentRecord(state: "granted", at: nowMs).stored, union,
                String(timelineCap), String(streamMaxLen),
            ] + profile.sorted { $0.key < $1.key }.flatMap { ["profile.\($0.key)", $0.value] }
        ).array ?? []
        return (r.first?.string ?? "", (r.count > 1 ? r[1].int : 0) == 1)
    }

    /// Records that an address left a channel (`unsubscribed`, `bounced`, `complained`, `opted_out`):
    /// on the address itself (so sends to it stop even if no customer holds it) and, when a customer
    /// holds it, as that customer's consent for the channel. A WeChat follower (openid of `account`)
    /// has no address-level record: its `consent.wechat:<account>` is revoked. Returns the customer id, if any.
    @discardableResult
    public func recordOptOut(channel: String, account: String? = nil, address: String, state: String, nowMs: Int64) async throws -> String? {
        if channel == "wechat" {
            guard let account, let id = try await lookup(Identity(kind: .openid, account: account, value: address)) else { return nil }
            try await setConsent(id, field: ConsentRecord.field("wechat:\(account)"), value: ConsentRecord(state: "revoked", at: nowMs).stored)
            return id
        }
        let value = "\(state)|\(nowMs)"
        _ = try await redis.send("SET", suppression.key(channel: channel, address: address), value)
        let identity = channel == "sms" ? Identity(kind: .phone, value: address) : Identity(kind: .email, value: address)
        guard let id = try await lookup(identity) else { return nil }
        try await setConsent(id, field: ConsentRecord.field(channel), value: value)
        return id
    }

    /// Records a consent field on a customer (following merges) and updates its field indexes.
    private func setConsent(_ id: String, field: String, value: String) async throws {
        let r = try await callFollowingMerges("customer_set_consent", id) { [$0, field, value] }.reply
        try await appendEmitted(r.last?.strings ?? [])
    }

    /// Recomputes the audience field indexes of these customers.
    public func reindex(_ ids: [String]) async throws {
        let replies = try await redis.fcallAll(StoreFunctions.library, "customer_reindex", calls: shards.group(ids).map { shards.call($0, args: $0.ids) })
        try await appendEmitted(replies.flatMap { $0.array?.last?.strings ?? [] })
    }

    /// One customer of an imported list.
    public struct ImportRow: Sendable {
        public var identities: [Identity]
        public var tags: [String]
        /// Stored as `profile.<name>`.
        public var profile: [String: String]

        public init(identities: [Identity], tags: [String] = [], profile: [String: String] = [:]) {
            self.identities = identities
            self.tags = tags
            self.profile = profile
        }
    }

    /// Creates or updates customers from a list, one function call per batch (keep batches near
    /// 1,000), as an import job does (`customers_import_rows`): a row joins the customer that holds one
    /// of its identities, else becomes a new one. Profile values are stored as given (unchecked).
    /// Returns how many were created, updated and merged. Rows without identities are ignored.
    @discardableResult
    public func importBatch(_ rows: [ImportRow], nowMs: Int64) async throws -> (created: Int, updated: Int, merged: Int) {
        if redis.isCluster {
            return try await importRowsInSteps(
                rows.map { row in
                    ImportStepRow(
                        identities: row.identities.map(\.storageForm), tags: row.tags,
                        profile: row.profile.sorted { $0.key < $1.key }.flatMap { ["profile.\($0.key)", $0.value] }, consent: [],
                        newId: ULID.make(milliseconds: nowMs))
                }, nowMs: nowMs, source: "import")
        }
        let json = JSONValue.array(
            rows.filter { !$0.identities.isEmpty }.map { row in
                let profile = row.profile.sorted { $0.key < $1.key }.flatMap { [JSONValue.string("profile.\($0.key)"), .string($0.value)] }
                return .array([
                    .int(0), .array(row.identities.map { .string($0.storageForm) }), .array(row.tags.map(JSONValue.string)), .array(profile), .array([]),
                    .string(ULID.make(milliseconds: nowMs)),
                ])
            })
        let r = try await redis.fcall(
            StoreFunctions.library, "customers_import_rows", keys: [], args: [String(nowMs), String(timelineCap), String(streamMaxLen), "import", json.text]
        ).array ?? []
        return (r.first?.int ?? 0, r.count > 1 ? r[1].int ?? 0 : 0, r.count > 2 ? r[2].int ?? 0 : 0)
    }

    /// The field indexes' format version (2: opt-in and attribute indexes); data from before it, or
    /// indexed for other attributes, is reindexed once at start.
    public static let fieldIndexVersion = "2"

    /// Writes which attributes are indexed (`Keys.attributeSchema`, read by the Lua reindex), then
    /// reindexes every customer (1,000 per script call) when the stored version or the attribute
    /// schema differs; returns how many. Safe to run in several processes at once (reindexing is
    /// idempotent). Call at start. On a cluster it first adopts customers carried over from a single
    /// Redis (`adoptCarriedOver`).
    @discardableResult
    public func prepareIndexes() async throws -> Int {
        let schema = attributes.indexSchema
        let version = Self.fieldIndexVersion + ":" + schema.map { "\($0.0)=\($0.1)" }.joined(separator: ",")
        // One transaction: a reindex running meanwhile never sees the schema empty.
        var commands = [["MULTI"], ["DEL", Keys.attributeSchema]]
        if !schema.isEmpty { commands.append(["HSET", Keys.attributeSchema] + schema.flatMap { [$0.0, $0.1] }) }
        _ = try await redis.pipelineChecked(commands + [["EXEC"]])
        var total = redis.isCluster ? try await adoptCarriedOver() : 0
        if try await redis.send("GET", Keys.fieldIndexVersion).string == version { return total }
        for shard in try await shards.holding(redis, sorted: true, { $0.key(single: Keys.customers) }) {
            var offset = 0
            while true {
                let ids = try await redis.send("ZRANGE", shard.key(single: Keys.customers), String(offset), String(offset + 999)).strings
                try await reindex(ids)
                offset += ids.count
                if ids.count < 1000 { break }
            }
            total += offset
        }
        _ = try await redis.send("SET", Keys.fieldIndexVersion, version)
        return total
    }

    /// One profile attribute as stored (nil: not set, or no such customer).
    public func profileValue(id: String, _ name: String) async throws -> String? {
        try await redis.send("HGET", Keys.customer(id), "profile.\(name)").string
    }

    /// Newest first, raw JSON entries.
    public func timeline(id: String, limit: Int) async throws -> [String] {
        try await redis.send("LRANGE", Keys.customerTimeline(id), "0", String(limit - 1)).strings
    }

    public enum BindOutcome: Sendable, Equatable {
        case bound(customerId: String)
        case alreadyBound(customerId: String)
        case merged(survivor: String, merged: String)
        case notFound
    }

    public func bind(_ identity: Identity, to id: String, nowMs: Int64) async throws -> BindOutcome {
        let entry = JSONText.object([("at", String(nowMs)), ("type", "\"identity.bound\""), ("data", identity.json)])
        if redis.isCluster { return try await bindInSteps(identity, to: id, nowMs: nowMs, entry: entry) }
        let r = try await redis.fcall(
            StoreFunctions.library, "customer_bind_identity", keys: [Keys.inboundStream],
            args: [id, identity.storageForm, String(nowMs), String(timelineCap), String(streamMaxLen), entry]
        ).strings
        switch r.first {
        case "bound": return .bound(customerId: r[1])
        case "exists": return .alreadyBound(customerId: r[1])
        case "merged": return .merged(survivor: r[1], merged: r[2])
        default: return .notFound
        }
    }

    public struct Session: Sendable {
        public let lastInteractionAt: Int64
        public let customerId: String?
        /// Raw JSON messages, oldest first.
        public let messages: [String]
    }

    /// Appends an outbound message to the conversation while the follower's window is open; false when it closed.
    @discardableResult
    public func appendToSession(account: String, openid: String, entry: String) async throws -> Bool {
        try await redis.fcall(
            StoreFunctions.library, "session_append", keys: [Keys.session(account: account, openid: openid), Keys.sessionMessages(account: account, openid: openid)],
            args: [entry, String(sessionMessageCap)]
        ).int == 1
    }

    public func session(account: String, openid: String) async throws -> Session? {
        let r = try await redis.pipelineChecked([
            ["GET", Keys.session(account: account, openid: openid)], ["LRANGE", Keys.sessionMessages(account: account, openid: openid), "0", "-1"],
        ])
        let fields = (r[0].string ?? "").split(separator: " ", maxSplits: 1)
        guard let last = fields.first.flatMap({ Int64($0) }) else { return nil }
        var customer = fields.count > 1 && !fields[1].isEmpty ? String(fields[1]) : nil
        if let c = customer { customer = try await resolve(c) }
        return Session(lastInteractionAt: last, customerId: customer, messages: r[1].strings)
    }
}

/// A customer record as the admin API shows it.
public struct Customer: Sendable, Equatable {
    public let id: String
    public let createdAt: Int64
    public let firstSeenAt: Int64
    public let lastSeenAt: Int64
    public let identities: [Identity]
    public let tags: [String]
    /// channel (e.g. `wechat:demo`) -> (state, at ms)
    public let consent: [String: Consent]
    /// IANA time zone (`timezone` or `profile.timezone`), if known.
    public let timezone: String?
    /// Every field of the record (profile.*, consent.*, score, stage, ...), for message templates.
    public let fields: [String: String]

    public typealias Consent = ConsentRecord

    public init(id: String, hash: [String: String], identities: [Identity], tags: [String]) {
        self.id = id
        createdAt = Int64(hash["createdAt"] ?? "") ?? 0
        firstSeenAt = Int64(hash["firstSeenAt"] ?? "") ?? createdAt
        lastSeenAt = Int64(hash["lastSeenAt"] ?? "") ?? createdAt
        self.identities = identities.sorted { $0.storageForm < $1.storageForm }
        self.tags = tags.sorted()
        consent = ConsentRecord.all(in: hash)
        timezone = hash["timezone"] ?? hash["profile.timezone"]
        fields = hash
    }
}
