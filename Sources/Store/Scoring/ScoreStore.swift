import GatewayCore
import RedisClient

/// Applies scoring-rule hits for one interaction in one script: once per interaction (the stream entry
/// id is claimed first), daily caps per rule, decay since the last change, behaviour tags, the stage
/// (the rule lives here only: it needs the stored score and stage), the `scores` sorted set, a timeline entry per
/// rule applied ("why this score") and the audience indexes.
public struct ScoreStore: Sendable {
    let redis: RedisPool
    let timelineCap: Int

    public init(redis: RedisPool, timelineCap: Int = 500) {
        self.redis = redis
        self.timelineCap = timelineCap
    }

    public enum Outcome: Sendable, Equatable {
        case scored(customer: String, score: Double, stage: String, previousStage: String, qualified: Bool, applied: [String])
        /// This interaction was scored before.
        case duplicate
        /// The customer no longer exists.
        case gone
    }

    /// `interaction` identifies the interaction (its `stream:inbound` entry id).
    public func apply(customer: String, interaction: String, hits: [ScoringRules.Rule], rules: ScoringRules, nowMs: Int64) async throws -> Outcome {
        var args = [customer, interaction, String(nowMs), String(Self.beijingDay(nowMs)), String(Int64(rules.halfLifeDays * 86_400_000))]
        args += [String(rules.stages.count)] + rules.stages.flatMap { [$0.name, String($0.minScore)] }
        args += [String(timelineCap), String(rules.qualifyRank), String(rules.tiers.count)]
        for t in rules.tiers {
            args += [t.name, t.minScore.map { String($0) } ?? "", String(t.stages.count)] + t.stages + [String(t.tags.count)] + t.tags
            args += [String(t.profile.count)] + t.profile.sorted { $0.key < $1.key }.flatMap { ["profile." + $0.key, $0.value] }
        }
        args += [String(hits.count)]
        for h in hits { args += [h.id, String(h.points), String(h.maxPerDay ?? 0), h.qualify ? "1" : "0", String(h.tags.count)] + h.tags }
        let r = try await redis.eval(Self.script, keys: [], args: args).array ?? []
        switch r.first?.string {
        case "dup": return .duplicate
        case "ok":
            return .scored(
                customer: r[1].string ?? customer, score: Double(r[2].string ?? "") ?? 0, stage: r[3].string ?? "new", previousStage: r[4].string ?? "new",
                qualified: r[5].int == 1, applied: r.count > 6 ? r[6].strings : [])
        default: return .gone
        }
    }

    /// Re-evaluates a scored customer with no new points: the score decayed to now, the tier again
    /// (a tier with a minimum score is left once the decayed score falls below it), the indexes.
    public func refresh(customer: String, rules: ScoringRules, nowMs: Int64) async throws {
        _ = try await apply(customer: customer, interaction: "", hits: [], rules: rules, nowMs: nowMs)
    }

    /// The customers' scores as they are now (decayed with the index's half-life); nil where none.
    public func current(_ ids: [String], nowMs: Int64) async throws -> [Double?] {
        guard !ids.isEmpty else { return [] }
        let r = try await redis.fcall(StoreFunctions.library, "customer_scores", keys: [Keys.scoresMeta] + ids.map(Keys.customer), args: [String(nowMs)])
        return r.strings.map { Double($0) }
    }

    /// Makes the scores index use `halfLifeMs` (the rules' half-life): when it differs, one process
    /// (by lease) builds the index anew beside the live one, `chunk` customers at a time, and swaps it
    /// in. Returns whether the index has that half-life now.
    @discardableResult
    public func ensureIndex(halfLifeMs: Int64, owner: String, chunk: Int = 1000) async throws -> Bool {
        let meta = (try await redis.send("HMGET", Keys.scoresMeta, "halfLifeMs", "buildHalfLifeMs").array ?? []).map(\.string)
        let current = Int64((meta.first ?? nil) ?? "") ?? 0
        let building = meta.count > 1 ? meta[1] : nil
        if current == halfLifeMs, building == nil { return true }
        guard try await redis.send("SET", Keys.scoresBuildLease, owner, "NX", "PX", "60000").string == "OK" else { return false }
        do {
            let done = try await build(halfLifeMs: halfLifeMs, chunk: chunk)
            try await releaseLease(Keys.scoresBuildLease, owner: owner)
            return done
        } catch {
            try? await releaseLease(Keys.scoresBuildLease, owner: owner)
            throw error
        }
    }

    func releaseLease(_ key: String, owner: String) async throws {
        _ = try await redis.fcall(StoreFunctions.library, "lease_release", keys: [key], args: [owner])
    }

    private func build(halfLifeMs: Int64, chunk: Int) async throws -> Bool {
        let h = String(halfLifeMs)
        let begun = try await redis.fcall(StoreFunctions.library, "score_index_begin", keys: [Keys.scoresMeta, Keys.scoresBuild], args: [h]).string
        if begun == "current" { return true }
        var cursor = "0"
        repeat {
            let scan = try await redis.send("ZSCAN", Keys.scores, cursor, "COUNT", String(chunk)).array ?? []
            guard scan.count == 2 else { return false }
            cursor = scan[0].string ?? "0"
            let members = scan[1].strings
            let ids = stride(from: 0, to: members.count, by: 2).map { members[$0] }
            if !ids.isEmpty {
                _ = try await redis.fcall(
                    StoreFunctions.library, "score_index_build", keys: [Keys.scoresMeta, Keys.scoresBuild] + ids.map(Keys.customer), args: [h] + ids)
            }
            _ = try await redis.send("PEXPIRE", Keys.scoresBuildLease, "60000")
        } while cursor != "0"
        return try await redis.fcall(StoreFunctions.library, "score_index_swap", keys: [Keys.scoresMeta, Keys.scores, Keys.scoresBuild], args: [h]).int == 1
    }

    /// An interaction no rule scores: a qualified customer's CRM record still gets it (coalesced).
    public func touch(customer: String) async throws {
        _ = try await redis.eval(Self.touchScript, keys: [], args: [customer])
    }

    static let touchScript = RedisScript(
        name: "score_touch",
        source: LuaCustomerLibrary.source + "\n" + #"""
            local id, live = resolveLive(ARGV[1])
            if live then crmTouch(id, 'interaction') end
            return 1
            """#)

    /// Days since the epoch in Beijing time (UTC+8), when daily caps reset.
    static func beijingDay(_ ms: Int64) -> Int64 { (ms + 8 * 3_600_000) / 86_400_000 }

    static let script = RedisScript(
        name: "score_apply",
        source: LuaCustomerLibrary.source + "\n" + #"""
            local id, live = resolveLive(ARGV[1])
            if not live then return { 'gone' } end
            -- No interaction: a refresh (the tier again with the decayed score), not deduplicated.
            if ARGV[2] ~= '' and not redis.call('SET', 'scored:' .. ARGV[2], '1', 'NX', 'EX', 604800) then return { 'dup' } end
            local now, halfLife = tonumber(ARGV[3]), tonumber(ARGV[5])
            local h = redis.call('HMGET', ckey(id), 'score', 'scoreAt', 'stage')
            if ARGV[2] == '' and not h[1] then return { 'gone' } end
            local score = decayedScore(tonumber(h[1] or '0'), tonumber(h[2] or ARGV[3]), now, halfLife)
            local i = 6
            local stages = {}
            for k = 1, tonumber(ARGV[i]) do stages[k] = { ARGV[i + 2 * k - 1], tonumber(ARGV[i + 2 * k]) } end
            i = i + 1 + 2 * #stages
            local cap = tonumber(ARGV[i])
            local qrank = tonumber(ARGV[i + 1])
            local tiers = {}
            local nt = tonumber(ARGV[i + 2])
            i = i + 3
            for k = 1, nt do
              local t = { name = ARGV[i], min = tonumber(ARGV[i + 1]) }
              local ns = tonumber(ARGV[i + 2])
              t.stages = { unpack(ARGV, i + 3, i + 2 + ns) }
              i = i + 3 + ns
              local ntg = tonumber(ARGV[i])
              t.tags = { unpack(ARGV, i + 1, i + ntg) }
              i = i + 1 + ntg
              local np = tonumber(ARGV[i])
              t.profile = { unpack(ARGV, i + 1, i + 2 * np) }
              i = i + 1 + 2 * np
              tiers[k] = t
            end
            local nh = tonumber(ARGV[i])
            i = i + 1
            local applied, qualified = {}, 0
            local counts = 'cust:{' .. id .. '}:rules:' .. ARGV[4]
            for _ = 1, nh do
              local rule, pts, max, q, nt = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), ARGV[i + 3], tonumber(ARGV[i + 4])
              local tags = { unpack(ARGV, i + 5, i + 4 + nt) }
              i = i + 5 + nt
              local ok = true
              if max > 0 then
                local n = redis.call('HINCRBY', counts, rule, 1)
                redis.call('EXPIRE', counts, 172800)
                ok = n <= max
              end
              if ok then
                score = score + pts
                addTags(id, tags)
                if q == '1' then qualified = 1 end
                applied[#applied + 1] = rule
                pushTimeline(id, cjson.encode({ at = now, type = 'score', data = { rule = rule, points = pts } }), cap)
              end
            end
            if score < 0 then score = 0 end
            -- The stage: the highest threshold reached; a stage
            -- reached is kept, and one no threshold gives (set by sales) outranks them all.
            local reached, ri = 'new', 0
            for k, s in ipairs(stages) do if score >= s[2] then reached, ri = s[1], k end end
            local current = h[3] or 'new'
            local stage = reached
            if current ~= 'new' then
              local ci = nil
              for k, s in ipairs(stages) do if s[1] == current then ci = k end end
              if not ci or ri <= ci then stage = current end
            end
            local text = string.format('%.4f', score)
            redis.call('HSET', ckey(id), 'score', text, 'scoreAt', ARGV[3], 'stage', stage)
            if stage ~= current then journeySignal(id, 'stage', stage) end
            -- A qualified lead: from a qualify rule, or at (or above) the qualifying stage. Once
            -- qualified, every change is synced to the CRM (reindex below notices it).
            if qualified == 0 and qrank > 0 and stage ~= 'new' then
              local si = nil
              for k, s in ipairs(stages) do if s[1] == stage then si = k end end
              if (not si) or si >= qrank then qualified = 1 end
            end
            -- The value tier, as ScoringRules.tier: the first whose conditions all hold.
            if #tiers > 0 then
              local tier = nil
              for _, t in ipairs(tiers) do
                local ok = (not t.min) or score >= t.min
                if ok and #t.stages > 0 then
                  ok = false
                  for _, s in ipairs(t.stages) do if s == stage then ok = true end end
                end
                for _, tg in ipairs(t.tags) do if ok and redis.call('SISMEMBER', tagskey(id), tg) == 0 then ok = false end end
                for k = 1, #t.profile, 2 do if ok and redis.call('HGET', ckey(id), t.profile[k]) ~= t.profile[k + 1] then ok = false end end
                if ok then tier = t.name; break end
              end
              if tier then redis.call('HSET', ckey(id), 'tier', tier) else redis.call('HDEL', ckey(id), 'tier') end
            end
            if qualified == 1 and redis.call('HSETNX', ckey(id), 'qualifiedAt', ARGV[3]) == 1 then
              pushTimeline(id, cjson.encode({ at = now, type = 'lead.qualified', data = { stage = stage } }), cap)
            end
            indexScore(id)
            reindex(id)
            return { 'ok', id, text, stage, current, qualified, applied }
            """#)
}
