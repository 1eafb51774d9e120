import GatewayCore
import RedisClient

/// A webhook on a Redis Cluster: the same change as `customer_ingest`, as a chain of single-slot
/// steps (docs/cluster-key-model.md, "Webhook ingest"), each safe to run again:
///
/// 1. the replay guard (`SET NX GET` on the nonce) and the dedup check, one round trip;
/// 2. the identity claim: `SET NX GET` of a new id on the identity's index key;
/// 3. `ingest_customer` in the customer's slot (following merge redirects), which records the
///    callback in the customer, so that a second run changes nothing there;
/// 4. the interaction on the stream, once per callback (`ingest_append`), and what the customer
///    step returned for other slots: scene counts, tag names, CRM and journey signals;
/// 5. `ingest_finish` in the sender's slot: the session and the dedup key.
///
/// The callback is answered "success" only after step 5. A chain cut off before it (a lost master,
/// a crash) is answered 503; the platform's retry finds its nonce with the same fingerprint and no
/// dedup key, and runs the chain again.
extension CustomerStore {
    func ingestInSteps(_ plan: IngestPlan) async throws -> IngestOutcome {
        let dedupTTL = plan.nonceKey == nil ? max(dedupTTLSeconds, nonceTTLSeconds) : dedupTTLSeconds
        var guardCommands = [["GET", plan.dedupKey]]
        if let nonce = plan.nonceKey { guardCommands.append(["SET", nonce, plan.fingerprint, "NX", "GET", "EX", String(nonceTTLSeconds)]) }
        let guarded = try await redis.pipelineChecked(guardCommands)
        let stored = guarded[0].string
        if guarded.count > 1, let seen = guarded[1].string {
            guard seen == plan.fingerprint else { return .replay }
            // The same request again: answered before, or cut off before its last step (run again).
            if let stored { return .retry(reply: stored) }
        } else if let stored {
            return .duplicate(reply: stored)
        }

        var customer = ""
        var created = false
        if let identity = plan.identity {
            let newId = ULID.make(milliseconds: plan.now)
            customer = try await redis.send("SET", Keys.identity(identity), newId, "NX", "GET").string ?? newId
            var counts = [String]()
            var emitted = [String]()
            (customer, created, counts, emitted) = try await applyToCustomer(plan, customer, identity: identity, dedupTTL: dedupTTL)
            if let union = plan.unionId {
                customer = try await claimOrMerge(union, for: customer, nowMs: plan.now).id
                try await redis.send("SADD", Keys.customerIdentities(customer), union.storageForm)
            }
            try await appendEvents(plan, customer: customer, counts: counts, emitted: emitted, dedupTTL: dedupTTL)
        } else {
            try await appendEvents(plan, customer: "", counts: [], emitted: [], dedupTTL: dedupTTL)
        }

        var keys = [plan.dedupKey]
        if let identity = plan.identity {
            keys.append(Keys.sessionDedup(account: plan.account, openid: identity.value))
            if let openid = plan.sessionOpenId {
                keys += [Keys.session(account: plan.account, openid: openid), Keys.sessionMessages(account: plan.account, openid: openid)]
            }
        }
        _ = try await redis.fcall(
            StoreFunctions.library, "ingest_finish", keys: keys,
            args: [
                plan.reply, String(dedupTTL), String(plan.now), customer, String(sessionTTLSeconds), String(sessionMessageCap), plan.sessionMessage,
                plan.replyMessage ?? "",
            ])
        return .stored(customerId: customer, created: created)
    }

    /// Step 3: the customer's id (after any merge redirect), whether this callback created it, the
    /// scene counts to make, and what it emitted for other slots.
    private func applyToCustomer(_ plan: IngestPlan, _ id: String, identity: Identity, dedupTTL: Int) async throws
        -> (String, Bool, [String], [String])
    {
        let (id, r) = try await callFollowingMerges("ingest_customer", id, keys: { [Keys.customer($0), Keys.customerIngested($0)] }) { id in
            [
                id, plan.dedupKey, String(dedupTTL), String(plan.now), identity.storageForm, plan.consent?.field ?? "", plan.consent?.value ?? "",
                plan.timelineEntry, String(timelineCap), plan.sceneCount?.kind.rawValue ?? "", plan.sceneCount?.scene ?? "",
                plan.sceneCount?.sourceField ?? "", plan.owner ?? "",
            ] + plan.tags
        }
        guard r.first?.string == "ok" else { throw RedisError.reply(command: "FCALL ingest_customer", message: "customer \(id): no answer") }
        return (id, r.count > 1 && r[1].int == 1, r.count > 2 ? r[2].strings : [], r.last?.strings ?? [])
    }

    /// Calls a sharded function of one customer (its shard and schema first, then `args(id)`),
    /// following the merge redirects it answers (`moved`, survivor), at most 16. Returns the id it
    /// ran on and its reply.
    func callFollowingMerges(
        _ function: String, _ id: String, keys: (String) -> [String] = { [Keys.customer($0)] }, args: (String) -> [String]
    ) async throws -> (id: String, reply: [RedisValue]) {
        try await shards.callFollowingMerges(redis, function, id, keys: keys, args: args)
    }

    /// `upsertFollower` on a cluster: the openid's index claimed for a new id, the customer's step
    /// (`follower_upsert_customer`, following merge redirects), then the unionid bound.
    func upsertFollowerInSteps(_ openid: Identity, unionid: String?, profile: [String: String], nowMs: Int64) async throws -> (id: String, created: Bool) {
        let newId = ULID.make(milliseconds: nowMs)
        let claimed = try await redis.send("SET", Keys.identity(openid), newId, "NX", "GET").string ?? newId
        let consent = [ConsentRecord.field("wechat:\(openid.account ?? "")"), ConsentRecord(state: "granted", at: nowMs).stored]
        let fields = profile.sorted { $0.key < $1.key }.flatMap { ["profile.\($0.key)", $0.value] }
        var (id, r) = try await callFollowingMerges("follower_upsert_customer", claimed) { [$0, openid.storageForm, String(nowMs)] + consent + fields }
        if let union = unionid.flatMap({ $0.isEmpty ? nil : Identity(kind: .unionid, value: $0) }) {
            id = try await claimOrMerge(union, for: id, nowMs: nowMs).id
            try await redis.send("SADD", Keys.customerIdentities(id), union.storageForm)
        }
        try await appendEmitted(r.last?.strings ?? [])
        return (id, r.count > 1 && r[1].int == 1)
    }

    /// An identity's index key for a customer: claimed when no one holds it (or it names a customer
    /// that is gone), else the live customer holding it is the same person and the two are merged
    /// (as steps). Returns the surviving id, the merged one (nil when none was merged), and whether the
    /// customer held the identity already. The caller adds the identity to the survivor.
    func claimOrMerge(_ identity: Identity, for id: String, nowMs: Int64) async throws -> (id: String, merged: String?, held: Bool) {
        guard let owner = try await redis.send("SET", Keys.identity(identity), id, "NX", "GET").string else { return (id, nil, false) }
        let holder = try await resolve(owner)
        guard holder != id else { return (id, nil, true) }
        guard try await redis.send("HEXISTS", Keys.customer(holder), "createdAt").int == 1 else {
            try await redis.send("SET", Keys.identity(identity), id)  // named a customer that is gone
            return (id, nil, false)
        }
        let (survivor, merged) = try await mergeInSteps(id, holder, nowMs: nowMs)
        return (survivor, merged, false)
    }

    /// Step 4: the interaction appended once per callback (`ingest_append`); the scene counts, the
    /// tag names and what the customer step emitted, which it returns only the first time it applies
    /// a callback (a chain cut off between the two loses those, never doubles them).
    private func appendEvents(_ plan: IngestPlan, customer: String, counts: [String], emitted: [String], dedupTTL: Int) async throws {
        let entry = [
            "type", plan.interactionType, "account", plan.account, "customer", customer, "at", String(plan.now), "op", plan.dedupKey,
            "payload", plan.payload,
        ]
        let stream = redis.streams.inbound(customer: customer)
        async let appended = redis.fcall(
            StoreFunctions.library, "ingest_append", keys: [stream, Keys.streamAppended(stream, op: plan.dedupKey)],
            args: [String(dedupTTL), String(streamMaxLen)] + entry)
        var commands = [[String]]()
        if let stats = plan.sceneCount?.statsKey { commands += counts.map { ["HINCRBY", stats, $0, "1"] } }
        if !plan.tags.isEmpty { commands.append(["SADD", Keys.tags] + plan.tags) }
        commands += try await Self.emittedCommands(emitted, redis: redis)
        _ = try await redis.pipelineChecked(commands)
        _ = try await appended
    }

    /// The CRM touches and journey signals sharded functions returned (`crm<US><id><US><reason>`,
    /// `journey<US><id><US><kind><US><value>`), as the stream appends customer_base makes on a
    /// single Redis. A journey signal goes out only for what an active journey watches (`Keys.journeyWatch`).
    static func emittedCommands(_ emitted: [String], redis: RedisPool) async throws -> [[String]] {
        var commands = [[String]]()
        var signals = [(customer: String, kind: String, value: String)]()
        for e in emitted {
            let parts = e.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init)
            if parts.first == "crm", parts.count == 3 {
                commands.append(["XADD", Keys.crmStream, "MAXLEN", "~", "1000000", "*", "customer", parts[1], "reason", parts[2]])
            } else if parts.first == "journey", parts.count == 4 {
                signals.append((parts[1], parts[2], parts[3]))
            }
        }
        if !signals.isEmpty {
            let watched = try await redis.send(["SMISMEMBER", Keys.journeyWatch] + signals.map { "\($0.kind):\($0.value)" }).array ?? []
            for (s, w) in zip(signals, watched) where w.int == 1 {
                commands.append(["XADD", Keys.journeySignals, "MAXLEN", "~", "1000000", "*", "customer", s.customer, "kind", s.kind, "value", s.value])
            }
        }
        return commands
    }

    /// Appends what sharded functions emitted (nothing on a single Redis, where they appended it).
    static func appendEmitted(_ emitted: [String], redis: RedisPool) async throws {
        guard !emitted.isEmpty else { return }
        _ = try await redis.pipelineChecked(try await emittedCommands(emitted, redis: redis))
    }

    func appendEmitted(_ emitted: [String]) async throws { try await Self.appendEmitted(emitted, redis: redis) }
}
