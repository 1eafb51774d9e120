import GatewayCore
import RedisClient

/// API events on a Redis Cluster (docs/cluster-key-model.md, "Customer API writes"): each event as a
/// chain of single-slot steps, each safe to run again, instead of one call for the batch:
/// 1. the event id's record (`Keys.apiEvent`): a repeat is answered as the first was;
/// 2. the customer found by id or by an identity's index key, or a new one whose first identity's
///    key is claimed for it (`SET NX GET`);
/// 3. each identity claimed for it, or the customer holding it merged (a verified identity the caller
///    may merge with) or proposed as a merge candidate;
/// 4. `event_customer` in the customer's slot (following merge redirects), which records the event id
///    in the customer, so that a second run changes nothing there;
/// 5. the interaction on the inbound stream, once per event (`ingest_append`), then the event id's record.
/// On a cluster a batch is not all or nothing: a client that retries a failed batch with event ids
/// records each once.
extension EventStore {
    func recordInSteps(_ events: [Event], mayMerge: Bool, actor: String, nowMs: Int64) async throws -> [Outcome] {
        var out = [Outcome]()
        out.reserveCapacity(events.count)
        for e in events { out.append(try await recordInSteps(e, mayMerge: mayMerge, actor: actor, nowMs: nowMs)) }
        return out
    }

    private func recordInSteps(_ e: Event, mayMerge: Bool, actor: String, nowMs: Int64) async throws -> Outcome {
        if let eid = e.id, let seen = try await redis.send("GET", Keys.apiEvent(eid)).string { return .duplicate(customer: seen) }
        var id: String
        var createWith = ""
        if let given = e.customer {
            guard let live = try await liveCustomer(given) else { return .unknownCustomer }
            id = live
        } else if let found = try await holder(of: e.identities) {
            id = found
        } else {
            guard let first = e.identities.first else { return .unknownCustomer }
            id = ULID.make(milliseconds: nowMs)
            if let owner = try await redis.send("SET", Keys.identity(first), id, "NX", "GET").string {
                if let live = try await liveCustomer(owner) {
                    id = live  // claimed meanwhile by another event for the same person
                } else {
                    _ = try await redis.send("SET", Keys.identity(first), id)  // named a customer that is gone
                    createWith = first.storageForm
                }
            } else {
                createWith = first.storageForm
            }
        }
        var joined = [String]()
        for identity in e.identities where identity.storageForm != createWith {
            if let owner = try await redis.send("GET", Keys.identity(identity)).string, let live = try await liveCustomer(owner), live != id,
                !(mayMerge && e.verified.contains(identity))
            {
                try await proposeMerge(id, live, identity: identity, source: e.type, actor: actor, nowMs: nowMs)
                continue
            }
            id = try await customers.claimOrMerge(identity, for: id, nowMs: nowMs).id
            joined.append(identity.storageForm)
        }
        let entry = JSONValue.object(["at": .int(e.atMs), "type": .string(e.type), "data": e.data]).text
        let (customer, r) = try await customers.callFollowingMerges("event_customer", id, keys: { [Keys.customer($0), Keys.customerEvents($0)] }) { id in
            [id, e.id ?? "", String(nowMs), String(e.atMs), createWith, entry, String(timelineCap)] + joined
        }
        switch r.first?.string {
        case "unknown": return .unknownCustomer
        case "ok", "dup": break
        default: throw RedisError.reply(command: "FCALL event_customer", message: "customer \(customer): no answer")
        }
        let op = "event:" + (e.id ?? ULID.make(milliseconds: nowMs))
        let stream = redis.streams.inbound(customer: customer)
        _ = try await redis.fcall(
            StoreFunctions.library, "ingest_append", keys: [stream, Keys.streamAppended(stream, op: op)],
            args: [String(7 * 86_400), String(streamMaxLen), "type", e.type, "customer", customer, "payload", e.data.text, "at", String(e.atMs), "source", "api"])
        try await customers.appendEmitted(r.last?.strings ?? [])
        if let eid = e.id { _ = try await redis.send("SET", Keys.apiEvent(eid), customer, "EX", String(7 * 86_400)) }
        return .recorded(customer: customer, created: r.first?.string == "ok" && r.count > 1 && r[1].int == 1)
    }

    /// The surviving customer an id leads to, when it is still on record.
    private func liveCustomer(_ id: String) async throws -> String? {
        let survivor = try await customers.resolve(id)
        return try await redis.send("HEXISTS", Keys.customer(survivor), "createdAt").int == 1 ? survivor : nil
    }

    /// The first live customer holding one of the identities.
    private func holder(of identities: [Identity]) async throws -> String? {
        guard !identities.isEmpty else { return nil }
        for owner in try await redis.pipelineChecked(identities.map { ["GET", Keys.identity($0)] }).compactMap(\.string) {
            if let live = try await liveCustomer(owner) { return live }
        }
        return nil
    }

    /// `mergeCandidate` of customer_base.lua as steps: the candidate written, then its pair claimed
    /// (one candidate per pair: a loser deletes its own), then listed and indexed under both customers
    /// (again for a pair claimed before, should that process have stopped before listing it).
    private func proposeMerge(_ a: String, _ b: String, identity: Identity, source: String, actor: String, nowMs: Int64) async throws {
        let pair = Keys.mergeCandidatePair(a, b)
        if try await redis.send("EXISTS", pair).int == 1, let existing = try await redis.send("GET", pair).string {
            try await listCandidate(existing, a, b)
            return
        }
        let candidate = ULID.make(milliseconds: nowMs)
        _ = try await redis.send(
            "HSET", Keys.mergeCandidate(candidate), "customer", a, "other", b, "identity", identity.storageForm, "source", source, "actor", actor,
            "createdAt", String(nowMs), "state", "pending")
        if let first = try await redis.send("SET", pair, candidate, "NX", "GET").string {
            _ = try await redis.send("DEL", Keys.mergeCandidate(candidate))
            try await listCandidate(first, a, b)
            return
        }
        try await listCandidate(candidate, a, b)
    }

    private func listCandidate(_ candidate: String, _ a: String, _ b: String) async throws {
        let created = try await redis.send("HGET", Keys.mergeCandidate(candidate), "createdAt").string
        var commands = [["SADD", Keys.customerMergeCandidates(a), candidate], ["SADD", Keys.customerMergeCandidates(b), candidate]]
        if let created, try await redis.send("HGET", Keys.mergeCandidate(candidate), "state").string == "pending" {
            commands.append(["ZADD", Keys.pendingMergeCandidates, "NX", created, candidate])
        }
        _ = try await redis.pipelineChecked(commands)
    }
}
