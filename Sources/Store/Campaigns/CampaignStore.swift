import Foundation
import GatewayCore
import RedisClient

/// Campaigns in Redis. Every change of state is one script that checks the current state, so two
/// processes (or two API calls) can never move a campaign along two paths.
public struct CampaignStore: Sendable {
    let redis: RedisPool
    let shards: IndexShards

    public init(redis: RedisPool) {
        self.redis = redis
        shards = IndexShards(redis: redis, attributes: nil)
    }

    public func create(id: String, definition: CampaignDefinition, json: String, startAt: Int64?, expiresAt: Int64?, now: Int64) async throws {
        var fields = [
            "id", id, "state", Campaign.State.draft.rawValue, "definition", json, "createdAt", String(now), "updatedAt", String(now),
            "cursor", "0", "planDone", "0",
        ]
        if let startAt { fields += ["startAt", String(startAt)] }
        if let expiresAt { fields += ["expiresAt", String(expiresAt)] }
        if let rate = definition.ratePerSecond { fields += ["ratePerSecond", String(rate)] }
        var commands = [["HSET", Keys.campaign(id)] + fields, ["ZADD", Keys.campaigns, String(now), id]]
        if let goal = definition.goal {
            commands.append(["HSET", Keys.campaignGoals, id, "\(goal.event)|\(Int64(goal.withinHours) * 3_600_000)"])
        }
        _ = try await redis.pipelineChecked(commands)
    }

    /// Campaigns with a goal: id -> (event type, window ms).
    public func goals() async throws -> [String: (event: String, windowMs: Int64)] {
        var out = [String: (event: String, windowMs: Int64)]()
        for (id, v) in try await redis.send("HGETALL", Keys.campaignGoals).dictionary {
            let parts = v.split(separator: "|")
            if parts.count == 2, let ms = Int64(parts[1]) { out[id] = (String(parts[0]), ms) }
        }
        return out
    }

    public func get(_ id: String) async throws -> Campaign? {
        guard ULID.isValid(id) else { return nil }
        return Campaign(hash: try await redis.send("HGETALL", Keys.campaign(id)).dictionary)
    }

    /// Newest first, a page at a time (`next` is where the following page starts).
    public func list(limit: Int, before: PageCursor? = nil) async throws -> (campaigns: [Campaign], next: PageCursor?) {
        let page = try await redis.newestFirst(Keys.campaigns, limit: limit, before: before)
        guard !page.ids.isEmpty else { return ([], nil) }
        return (try await redis.pipelineChecked(page.ids.map { ["HGETALL", Keys.campaign($0)] }).compactMap { Campaign(hash: $0.dictionary) }, page.next)
    }

    /// Campaigns the runner watches (scheduled, running, paused).
    public func active() async throws -> [String] { try await redis.send("SMEMBERS", Keys.activeCampaigns).strings.sorted() }

    public func stats(_ id: String) async throws -> CampaignStats { CampaignStats(hash: try await redis.send("HGETALL", Keys.campaignStats(id)).dictionary) }

    /// Messages sent per second over the last `seconds` full seconds.
    public func sendRate(_ id: String, now: Int64, seconds: Int64 = 10) async throws -> Double {
        let buckets = try await redis.send("HGETALL", Keys.campaignSendRate(id)).dictionary
        let current = now / 1000
        let sum = buckets.reduce(0) { acc, kv in
            guard let s = Int64(kv.key), s < current, s >= current - seconds else { return acc }
            return acc + (Int(kv.value) ?? 0)
        }
        return Double(sum) / Double(seconds)
    }

    public enum Action: String, Sendable {
        /// draft -> scheduled (or expired when already past its expiry).
        case schedule
        /// scheduled -> running, once the audience snapshot is taken.
        case activate
        case pause, resume, cancel, expire
        /// running -> completed, when every recipient is planned and no message is open.
        case complete
    }

    public enum Transition: Sendable, Equatable {
        case moved(to: Campaign.State)
        case illegal(from: Campaign.State)
        case notReady
        case missing
    }

    /// What an action does, decided without stored state (the one home of the campaign state
    /// machine): the states it moves from, the state it moves to and the time field it stamps.
    /// `campaign_transition` applies it and checks what needs stored state (expiry, readiness).
    struct Move: Equatable {
        let from: [Campaign.State]
        let to: Campaign.State
        let stamp: String?
    }

    static func move(_ action: Action) -> Move {
        let unfinished: [Campaign.State] = [.draft, .scheduled, .running, .paused]
        switch action {
        case .schedule: return Move(from: [.draft], to: .scheduled, stamp: nil)
        case .activate: return Move(from: [.scheduled], to: .running, stamp: "startedAt")
        case .pause: return Move(from: [.running], to: .paused, stamp: "pausedAt")
        case .resume: return Move(from: [.paused], to: .running, stamp: nil)
        case .cancel: return Move(from: unfinished, to: .cancelled, stamp: "endedAt")
        case .expire: return Move(from: unfinished, to: .expired, stamp: "endedAt")
        case .complete: return Move(from: [.running], to: .completed, stamp: "endedAt")
        }
    }

    /// `audienceSize` and `snapshot` (the key the audience was evaluated into) go with `activate`: the
    /// snapshot becomes the campaign's audience if the move happens, and is deleted if not.
    public func transition(_ id: String, _ action: Action, now: Int64, audienceSize: Int = 0, snapshot: String? = nil) async throws -> Transition {
        let move = Self.move(action)
        var fields = move.stamp.map { [$0, String(now)] } ?? []
        if action == .activate { fields += ["audienceSize", String(audienceSize), "cursor", "0", "planDone", "0"] }
        let check: String = [.schedule, .activate, .complete].contains(action) ? action.rawValue : ""
        let active = { (s: Campaign.State) in s.isFinal || s == .draft ? "0" : "1" }
        let cluster = redis.isCluster
        if cluster, action == .activate, let snapshot { fields += ["snapshot", snapshot] }
        let r = try await redis.fcall(
            StoreFunctions.library, "campaign_transition",
            keys: [Keys.campaign(id), Keys.campaignStats(id)] + (cluster ? [] : [Keys.activeCampaigns, snapshot ?? "", Keys.campaignAudience(id)]),
            args: [check, String(now), id, move.from.map(\.rawValue).joined(separator: ","), move.to.rawValue, active(move.to),
                   Campaign.State.expired.rawValue, active(.expired)] + fields
        ).strings
        if cluster {
            // The active set is in another slot: made to agree with the state as it is now (read again,
            // so that of two racing moves the later one's reading wins), and a lost activation's
            // snapshot copies removed.
            if r.first == "ok", let state = try await redis.send("HGET", Keys.campaign(id), "state").string.flatMap(Campaign.State.init(rawValue:)) {
                try await redis.send(active(state) == "1" ? "SADD" : "SREM", Keys.activeCampaigns, id)
            }
            if r.first == "illegal", action == .activate, let snapshot { _ = try await shards.sendEach(redis) { ["DEL", $0.key(single: snapshot)] } }
        }
        switch r.first {
        case "ok": return .moved(to: Campaign.State(rawValue: r[1]) ?? .draft)
        case "illegal": return .illegal(from: Campaign.State(rawValue: r[1]) ?? .draft)
        case "notready": return .notReady
        default: return .missing
        }
    }

    /// Puts up to `limit` parked messages back on their queues; returns how many were taken.
    /// One chunk of the campaign's audience snapshot (`SSCAN` from `cursor`): where the next starts
    /// ("0" = done) and the customer ids.
    /// On a cluster the snapshot is the shards' copies of `snapshot` (`Campaign.snapshot`), paged across
    /// them (`IndexShards.scanPage`); a static set gives the same chunk for the same cursor again.
    public func audienceChunk(_ id: String, snapshot: String? = nil, cursor: String, count: Int) async throws -> (next: String, ids: [String]) {
        guard shards.layout == .perSlot else {
            let scan = try await redis.send("SSCAN", Keys.campaignAudience(id), cursor, "COUNT", String(count)).array ?? []
            guard scan.count == 2, let next = scan[0].string else { throw RedisError(.server, command: "SSCAN", message: "unexpected reply (no audience snapshot?)") }
            return (next, scan[1].strings)
        }
        let key = snapshot ?? Keys.campaignAudience(id)
        let page = try await shards.scanPage(redis, { $0.key(single: key) }, cursor: cursor, limit: count)
        return (page.nextCursor ?? "0", page.ids)
    }

    /// Recipients' records and identities, in one pipeline (an empty record: the customer is gone).
    public func recipients(_ ids: [String]) async throws -> [(hash: [String: String], identities: [Identity])] {
        guard !ids.isEmpty else { return [] }
        var commands = [[String]]()
        commands.reserveCapacity(ids.count * 2)
        for id in ids { commands += [["HGETALL", Keys.customer(id)], ["SMEMBERS", Keys.customerIdentities(id)]] }
        let replies = try await redis.pipelineChecked(commands)
        return ids.indices.map { i in (replies[2 * i].dictionary, replies[2 * i + 1].strings.compactMap(Identity.init(storageForm:))) }
    }

    /// Writes one planned chunk (`campaign_plan_chunk` in Lua/campaigns.lua; its keys and arguments
    /// are `CampaignPlanner.prepare`'s): "ok", "stopped" (the campaign no longer runs) or "lease"
    /// (another planner holds it, or the checkpoint moved).
    public func planChunk(keys: [String], args: [String]) async throws -> String? {
        try await redis.fcall(StoreFunctions.library, "campaign_plan_chunk", keys: keys, args: args).array?.first?.string
    }

    /// Whether this Redis is a cluster (planning writes a chunk in steps there).
    public var isCluster: Bool { redis.isCluster }

    /// Whether `owner` holds the campaign's planner lease, it runs, and its checkpoint is `cursor`: a
    /// cluster's planner checks before writing a chunk's references (campaign_plan_chunk checks again).
    public func planning(_ id: String, owner: String, cursor: String) async throws -> Bool {
        let r = try await redis.pipelineChecked([["GET", Keys.campaignPlanner(id)], ["HMGET", Keys.campaign(id), "state", "cursor", "planDone"]])
        let c = (r[1].array ?? []).map(\.string)
        return r[0].string == owner && c.count == 3 && c[0] == "running" && c[1] == cursor && c[2] != "1"
    }

    /// A cluster's chunk of references, per stream (`[message id, variant, customer, channel]`
    /// flattened), appended once for the chunk at `cursor` however often it is planned
    /// (`campaign_plan_refs`).
    public func appendReferences(campaign: String, cursor: String, now: Int64, byStream: [(stream: String, refs: [String])]) async throws {
        guard !byStream.isEmpty else { return }
        _ = try await redis.fcallAll(StoreFunctions.library, "campaign_plan_refs", calls: byStream.map {
            (keys: [$0.stream, Keys.streamAppended($0.stream, op: "plan:\(campaign):\(cursor)")], args: ["604800", String(now), campaign] + $0.refs)
        })
    }

    /// A cluster's hold-out exposures, each in its customer's slot (`campaign_holdout`): whether each
    /// customer was still there.
    public func recordHoldouts(campaign: String, now: Int64, customers: [String]) async throws -> [Bool] {
        guard !customers.isEmpty else { return [] }
        return try await redis.fcallAll(StoreFunctions.library, "campaign_holdout", calls: customers.map {
            (keys: [Keys.customerCampaigns($0), Keys.customer($0)], args: [campaign, String(now)])
        }).map { $0.int == 1 }
    }

    /// How many of the campaign's messages are parked (held while it was paused).
    public func parkedCount(_ id: String) async throws -> Int { try await redis.send("SCARD", Keys.campaignParked(id)).int ?? 0 }

    public func releaseParked(_ id: String, limit: Int = 1000) async throws -> Int {
        let parked = Keys.campaignParked(id)
        let ids = try await redis.send("SRANDMEMBER", parked, String(limit)).strings
        guard !ids.isEmpty else { return 0 }
        if redis.isCluster { return try await releaseParkedInSteps(id, ids: ids) }
        let keys = [parked] + (try await MessageStore(redis: redis).queueKeys(ids))
        return try await redis.fcall(StoreFunctions.library, "campaign_release_parked", keys: keys, args: ids).int ?? 0
    }
}

extension CampaignStore {
    /// A cluster's `campaign_release_parked`: each message still queued or retrying appended to its
    /// queue once for this resume (the campaign's `updatedAt`), then the ids leave the parked set.
    func releaseParkedInSteps(_ id: String, ids: [String]) async throws -> Int {
        let resumed = try await redis.send("HGET", Keys.campaign(id), "updatedAt").string ?? ""
        let messages = MessageStore(redis: redis)
        for (message, q) in zip(ids, try await messages.queues(ids, with: ["state"])) {
            guard let stream = q.stream, q.fields[0] == "queued" || q.fields[0] == "retrying" else { continue }
            try await messages.queueOnce(message, on: stream, op: "release:\(message):\(resumed)")
        }
        return try await redis.send(["SREM", Keys.campaignParked(id)] + ids).int ?? 0
    }
}
