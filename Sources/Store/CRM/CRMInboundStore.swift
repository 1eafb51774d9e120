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

}
