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
        for c in changes {
            switch c.ref {
            case .customer(let id): args += ["id", id]
            case .record(let r): args += ["record", r]
            }
            args += [c.stage ?? "", c.owner ?? "", String(c.addTags.count)] + c.addTags + [String(c.removeTags.count)] + c.removeTags
        }
        let r = try await redis.eval(Self.script, keys: [], args: args).array ?? []
        return r.map { $0.string.flatMap { $0.isEmpty ? nil : $0 } }
    }

    static let script = RedisScript(
        name: "crm_inbound",
        source: LuaCustomerLibrary.source + "\n" + #"""
            crmSilent = true
            local a, now, cap = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
            local out = {}
            local i = 4
            while i <= #ARGV do
              local kind, ref, stage, owner = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
              local na = tonumber(ARGV[i + 4])
              local adds = { unpack(ARGV, i + 5, i + 4 + na) }
              i = i + 5 + na
              local nr = tonumber(ARGV[i])
              local removes = { unpack(ARGV, i + 1, i + nr) }
              i = i + 1 + nr
              local id = ref
              if kind == 'record' then id = redis.call('GET', 'idx:crm:' .. a .. ':' .. ref) end
              local live = false
              if id then id, live = resolveLive(id) end
              if live then
                local data = { adapter = a }
                if stage ~= '' then
                  if redis.call('HGET', ckey(id), 'stage') ~= stage then journeySignal(id, 'stage', stage) end
                  redis.call('HSET', ckey(id), 'stage', stage); data.stage = stage
                end
                if owner ~= '' then redis.call('HSET', ckey(id), 'owner', owner); data.owner = owner end
                addTags(id, adds)
                removeTags(id, removes)
                if #adds > 0 then data.addTags = adds end
                if #removes > 0 then data.removeTags = removes end
                pushTimeline(id, cjson.encode({ at = now, type = 'crm.update', data = data }), cap)
                reindex(id)
                out[#out + 1] = id
              else
                out[#out + 1] = ''
              end
            end
            return out
            """#)
}
