import GatewayCore
import RedisClient

/// A change sales made in the CRM, for one customer.
public struct CRMChange: Sendable, Equatable {
    public enum Ref: Sendable, Equatable {
        /// Our customer id.
        case customer(String)
        /// The CRM's record id (found through the `crm:<adapter>:<id>` identity).
        case record(String)
    }

    public var ref: Ref
    public var stage: String?
    public var owner: String?
    public var addTags: [String] = []
    public var removeTags: [String] = []

    public init(ref: Ref, stage: String? = nil, owner: String? = nil, addTags: [String] = [], removeTags: [String] = []) {
        self.ref = ref
        self.stage = stage
        self.owner = owner
        self.addTags = addTags
        self.removeTags = removeTags
    }

    public var isEmpty: Bool { stage == nil && owner == nil && addTags.isEmpty && removeTags.isEmpty }
}

/// Applies CRM changes (stage, owner, tags) in one script, without syncing them back to any CRM.
public struct CRMInboundStore: Sendable {
    public let redis: RedisPool
    let timelineCap: Int

    public init(redis: RedisPool, timelineCap: Int = 500) {
        self.redis = redis
        self.timelineCap = timelineCap
    }

    /// Per change: the customer id it applied to, or nil when no customer matches.
    public func apply(adapter: String, changes: [CRMChange], nowMs: Int64) async throws -> [String?] {
        if redis.isCluster { return try await applyInSteps(adapter: adapter, changes: changes, nowMs: nowMs) }
        var args = [adapter, String(nowMs), String(timelineCap)]
        var keys = [String]()
        for c in changes {
            switch c.ref {
            case .customer(let id):
                args += ["id", id]
                keys.append("")
            case .record(let r):
                args += ["record", r]
                keys.append(Keys.identity(Identity(kind: .crm, account: adapter, value: r)))
            }
            args += [c.stage ?? "", c.owner ?? "", String(c.addTags.count)] + c.addTags + [String(c.removeTags.count)] + c.removeTags
        }
        let r = try await redis.fcall(StoreFunctions.library, "crm_inbound_apply", keys: keys, args: args).array ?? []
        return r.map { $0.string.flatMap { $0.isEmpty ? nil : $0 } }
    }


    /// `apply` on a cluster: each change's record looked up in its identity index, then applied in its
    /// customer's slot (`crm_inbound_customer`, following merges); the tag names and the journey
    /// signals it returns appended after.
    private func applyInSteps(adapter: String, changes: [CRMChange], nowMs: Int64) async throws -> [String?] {
        let shards = try await IndexShards(redis: redis, attributes: nil).resolved(redis)
        var out = [String?]()
        for c in changes {
            let found: String?
            switch c.ref {
            case .customer(let id): found = id
            case .record(let r): found = try await redis.send("GET", Keys.identity(Identity(kind: .crm, account: adapter, value: r))).string
            }
            guard let found else {
                out.append(nil)
                continue
            }
            let rest = [adapter, String(nowMs), String(timelineCap), c.stage ?? "", c.owner ?? "", String(c.addTags.count)] + c.addTags + c.removeTags
            let (id, r) = try await shards.callFollowingMerges(redis, "crm_inbound_customer", found, args: { [$0] + rest })
            try await CustomerStore.appendEmitted(r.last?.strings ?? [], redis: redis)
            if !c.addTags.isEmpty { try await redis.send(["SADD", Keys.tags] + c.addTags) }
            out.append(r.first?.string == "ok" ? id : nil)
        }
        return out
    }
}
