import Foundation
import GatewayCore
import RedisClient
import Store

/// Campaigns in Redis. Every change of state is one script that checks the current state, so two
/// processes (or two API calls) can never move a campaign along two paths.
public struct CampaignStore: Sendable {
    let redis: RedisPool

    public init(redis: RedisPool) { self.redis = redis }

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

    /// Newest first.
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

    /// `audienceSize` and `snapshot` (the key the audience was evaluated into) go with `activate`: the
    /// snapshot becomes the campaign's audience if the move happens, and is deleted if not.
    public func transition(_ id: String, _ action: Action, now: Int64, audienceSize: Int = 0, snapshot: String? = nil) async throws -> Transition {
        let r = try await redis.eval(
            Self.transitionScript,
            keys: [Keys.campaign(id), Keys.activeCampaigns, Keys.campaignStats(id), snapshot ?? "", Keys.campaignAudience(id)],
            args: [action.rawValue, String(now), String(audienceSize), id]
        ).strings
        switch r.first {
        case "ok": return .moved(to: Campaign.State(rawValue: r[1]) ?? .draft)
        case "illegal": return .illegal(from: Campaign.State(rawValue: r[1]) ?? .draft)
        case "notready": return .notReady
        default: return .missing
        }
    }

    /// Puts up to `limit` parked messages back on their queues; returns how many were taken.
    public func releaseParked(_ id: String, limit: Int = 1000) async throws -> Int {
        try await redis.eval(Self.releaseParkedScript, keys: [Keys.campaignParked(id)], args: [String(limit)]).int ?? 0
    }

    static let transitionScript = RedisScript(
        name: "campaign_transition",
        source: #"""
            local st = redis.call('HGET', KEYS[1], 'state')
            if not st then return { 'missing' } end
            local a, now = ARGV[1], ARGV[2]
            local function move(to, ...)
              redis.call('HSET', KEYS[1], 'state', to, 'updatedAt', now, ...)
              if to == 'scheduled' or to == 'running' or to == 'paused' then redis.call('SADD', KEYS[2], ARGV[4])
              else redis.call('SREM', KEYS[2], ARGV[4]) end
              return { 'ok', to }
            end
            local function from(...)
              for _, s in ipairs({ ... }) do if st == s then return true end end
              return false
            end
            if a == 'schedule' then
              if st ~= 'draft' then return { 'illegal', st } end
              local exp = tonumber(redis.call('HGET', KEYS[1], 'expiresAt') or '0')
              if exp > 0 and exp <= tonumber(now) then return move('expired', 'endedAt', now) end
              if not redis.call('HGET', KEYS[1], 'startAt') then redis.call('HSET', KEYS[1], 'startAt', now) end
              return move('scheduled')
            elseif a == 'activate' then
              if st ~= 'scheduled' then
                if KEYS[4] ~= '' then redis.call('DEL', KEYS[4]) end
                return { 'illegal', st }
              end
              if KEYS[4] ~= '' then
                if redis.call('EXISTS', KEYS[4]) == 1 then redis.call('RENAME', KEYS[4], KEYS[5]) else redis.call('DEL', KEYS[5]) end
              end
              return move('running', 'startedAt', now, 'audienceSize', ARGV[3], 'cursor', '0', 'planDone', '0')
            elseif a == 'pause' then
              if st ~= 'running' then return { 'illegal', st } end
              return move('paused', 'pausedAt', now)
            elseif a == 'resume' then
              if st ~= 'paused' then return { 'illegal', st } end
              return move('running')
            elseif a == 'cancel' then
              if not from('draft', 'scheduled', 'running', 'paused') then return { 'illegal', st } end
              return move('cancelled', 'endedAt', now)
            elseif a == 'expire' then
              if not from('draft', 'scheduled', 'running', 'paused') then return { 'illegal', st } end
              return move('expired', 'endedAt', now)
            elseif a == 'complete' then
              if st ~= 'running' then return { 'illegal', st } end
              if redis.call('HGET', KEYS[1], 'planDone') ~= '1' then return { 'notready' } end
              if tonumber(redis.call('HGET', KEYS[3], 'open') or '0') > 0 then return { 'notready' } end
              return move('completed', 'endedAt', now)
            end
            return { 'illegal', st }
            """#)

    static let releaseParkedScript = RedisScript(
        name: "campaign_release_parked",
        source: RequeueLua.source + "\n" + #"""
            local ids = redis.call('SPOP', KEYS[1], tonumber(ARGV[1]))
            for _, id in ipairs(ids) do requeue(id, { queued = true, retrying = true }) end
            return #ids
            """#)
}
