import GatewayCore
import RedisClient

/// Pairs of customers that an unverified identity would have merged (see `EventStore.record`): listed
/// for a person, who accepts (the two are merged, as binding the identity would have) or rejects (the
/// pair is not proposed again).
public struct MergeCandidateStore: Sendable {
    let redis: RedisPool
    let customers: CustomerStore

    public init(redis: RedisPool, customers: CustomerStore) {
        self.redis = redis
        self.customers = customers
    }

    public struct Candidate: Sendable, Equatable {
        public let id: String
        public let customer: String
        public let other: String
        public let identity: Identity
        /// The event type that brought the identity.
        public let source: String
        public let actor: String
        public let createdAt: Int64
        public let state: String
        public let decidedAt: Int64?
        public let decidedBy: String?
        /// After an accept: the customer both are now.
        public let survivor: String?
    }

    /// Pending candidates, oldest first, from `offset`.
    public func pending(offset: Int, limit: Int) async throws -> (candidates: [Candidate], total: Int) {
        let r = try await redis.pipelineChecked([
            ["ZRANGE", Keys.pendingMergeCandidates, String(offset), String(offset + limit - 1)], ["ZCARD", Keys.pendingMergeCandidates],
        ])
        var out = [Candidate]()
        for id in r[0].strings { if let c = try await get(id) { out.append(c) } }
        return (out, r[1].int ?? 0)
    }

    public func get(_ id: String) async throws -> Candidate? {
        guard ULID.isValid(id) else { return nil }
        let f = try await redis.send("HGETALL", Keys.mergeCandidate(id)).dictionary
        guard let a = f["customer"], let b = f["other"], let identity = f["identity"].flatMap(Identity.init(storageForm:)),
            let created = f["createdAt"].flatMap(Int64.init), let state = f["state"]
        else { return nil }
        return Candidate(
            id: id, customer: a, other: b, identity: identity, source: f["source"] ?? "", actor: f["actor"] ?? "", createdAt: created, state: state,
            decidedAt: f["decidedAt"].flatMap(Int64.init), decidedBy: f["decidedBy"], survivor: f["survivor"])
    }

    public enum Decision: Sendable, Equatable {
        case decided(Candidate)
        /// Already accepted or rejected (the state it has).
        case alreadyDecided(Candidate)
        case notFound
    }

    /// Merges the two customers (binding the identity to the first, which merges the holder into it).
    /// Safe to repeat: an accept interrupted after the merge completes on the next try.
    public func accept(_ id: String, by actor: String, nowMs: Int64) async throws -> Decision {
        guard let c = try await get(id) else { return .notFound }
        guard c.state == "pending" else { return .alreadyDecided(c) }
        let survivor: String
        switch try await customers.bind(c.identity, to: c.customer, nowMs: nowMs) {
        case .bound(let s), .alreadyBound(let s): survivor = s
        case .merged(let s, _): survivor = s
        case .notFound:
            // The first customer is gone (erased): nothing left to merge.
            survivor = c.other
        }
        return try await decide(c, state: "accepted", by: actor, survivor: survivor, nowMs: nowMs)
    }

    public func reject(_ id: String, by actor: String, nowMs: Int64) async throws -> Decision {
        guard let c = try await get(id) else { return .notFound }
        guard c.state == "pending" else { return .alreadyDecided(c) }
        return try await decide(c, state: "rejected", by: actor, survivor: nil, nowMs: nowMs)
    }

    private func decide(_ c: Candidate, state: String, by actor: String, survivor: String?, nowMs: Int64) async throws -> Decision {
        var fields = ["HSET", Keys.mergeCandidate(c.id), "state", state, "decidedAt", String(nowMs), "decidedBy", actor]
        if let survivor { fields += ["survivor", survivor] }
        _ = try await redis.pipelineChecked([fields, ["ZREM", Keys.pendingMergeCandidates, c.id]])
        return .decided(try await get(c.id) ?? c)
    }
}
