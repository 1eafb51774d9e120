import GatewayCore
import RedisClient

/// Applies scoring-rule hits for one interaction in one script: once per interaction (the stream entry
/// id is claimed first), daily caps per rule, decay since the last change, behaviour tags, the stage
/// (the rule lives here only: it needs the stored score and stage), the `scores` sorted set, a timeline entry per
/// rule applied ("why this score") and the audience indexes.
public struct ScoreStore: Sendable {
    let redis: RedisPool
    let timelineCap: Int
    let shards: IndexShards

    public init(redis: RedisPool, timelineCap: Int = 500, attributes: CustomerAttributes? = nil) {
        self.redis = redis
        self.timelineCap = timelineCap
        shards = IndexShards(redis: redis, attributes: attributes)
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
        var args = [interaction, String(nowMs), String(Self.beijingDay(nowMs)), String(Int64(rules.halfLifeDays * 86_400_000))]
        args += [String(rules.stages.count)] + rules.stages.flatMap { [$0.name, String($0.minScore)] }
        args += [String(timelineCap), String(rules.qualifyRank), String(rules.tiers.count)]
        for t in rules.tiers {
            args += [t.name, t.minScore.map { String($0) } ?? "", String(t.stages.count)] + t.stages + [String(t.tags.count)] + t.tags
            args += [String(t.profile.count)] + t.profile.sorted { $0.key < $1.key }.flatMap { ["profile." + $0.key, $0.value] }
        }
        args += [String(hits.count)]
        for h in hits { args += [h.id, String(h.points), String(h.maxPerDay ?? 0), h.qualify ? "1" : "0", String(h.tags.count)] + h.tags }
        let shards = try await self.shards.resolved(redis)
        let (_, r) = try await shards.callFollowingMerges(
            redis, "score_apply", customer,
            keys: { [Keys.customer($0)] + (interaction.isEmpty ? [] : [shards.scoredMark(customer: $0, interaction: interaction)]) },
            args: { [$0] + args })
        try await CustomerStore.appendEmitted(r.last?.strings ?? [], redis: redis)
        switch r.first?.string {
        case "dup": return .duplicate
        case "ok":
            let applied = r.count > 7 ? r[6].strings : []
            // On a cluster the tag names go to Keys.tags here (a shard's call cannot reach it).
            let tags = Set(hits.filter { applied.contains($0.id) }.flatMap(\.tags))
            if shards.layout == .perSlot, !tags.isEmpty { try await redis.send(["SADD", Keys.tags] + tags.sorted()) }
            return .scored(
                customer: r[1].string ?? customer, score: Double(r[2].string ?? "") ?? 0, stage: r[3].string ?? "new", previousStage: r[4].string ?? "new",
                qualified: r[5].int == 1, applied: applied)
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
        let groups = shards.group(ids)
        let replies = try await redis.fcallAll(
            StoreFunctions.library, "customer_scores", calls: groups.map { (keys: [$0.shard.key(single: Keys.scoresMeta)] + $0.ids.map(Keys.customer), args: [String(nowMs)]) })
        var scores = [String: Double]()
        for (group, reply) in zip(groups, replies) {
            for (id, text) in zip(group.ids, reply.strings) { scores[id] = Double(text) }
        }
        return ids.map { scores[$0] }
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
        let lease = Lease(redis: redis, key: Keys.scoresBuildLease, owner: owner)
        guard try await lease.take(ms: 60_000) else { return false }
        do {
            let done = try await build(halfLifeMs: halfLifeMs, chunk: chunk)
            try await lease.release()
            return done
        } catch {
            try? await lease.release()
            throw error
        }
    }

    /// Builds the index for `halfLifeMs` from the live one and swaps it in, shard by shard (one shard
    /// on a single Redis). Each shard's meta says which half-life its index and its build have, so a
    /// score written meanwhile lands in both, consistently; scores:meta records the rebuild as a whole.
    private func build(halfLifeMs: Int64, chunk: Int) async throws -> Bool {
        let h = String(halfLifeMs)
        let cluster = shards.layout == .perSlot
        let begun = try await redis.fcall(
            StoreFunctions.library, "score_index_begin", keys: cluster ? [Keys.scoresMeta] : [Keys.scoresMeta, Keys.scoresBuild], args: [h]
        ).string
        if begun == "current" { return true }
        func keys(_ shard: IndexShard) -> (meta: String, scores: String, build: String) {
            (shard.key(single: Keys.scoresMeta), shard.key(single: Keys.scores), shard.key(single: Keys.scoresBuild))
        }
        if cluster { _ = try await shards.readEach(redis, "score_index_begin", keys: { [keys($0).meta, keys($0).build] }, args: [h]) }
        for shard in try await shards.holding(redis, sorted: true, { keys($0).scores }) {
            var cursor = "0"
            repeat {
                let scan = try await redis.send("ZSCAN", keys(shard).scores, cursor, "COUNT", String(chunk)).array ?? []
                guard scan.count == 2 else { return false }
                cursor = scan[0].string ?? "0"
                let members = scan[1].strings
                let ids = stride(from: 0, to: members.count, by: 2).map { members[$0] }
                if !ids.isEmpty {
                    _ = try await redis.fcall(
                        StoreFunctions.library, "score_index_build", keys: [keys(shard).meta, keys(shard).build] + ids.map(Keys.customer), args: [h] + ids)
                }
                _ = try await redis.send("PEXPIRE", Keys.scoresBuildLease, "60000")
            } while cursor != "0"
        }
        let swapped = try await shards.readEach(redis, "score_index_swap", keys: { [keys($0).meta, keys($0).scores, keys($0).build] }, args: [h])
        guard swapped.allSatisfy({ $0.int == 1 }) else { return false }
        if cluster { _ = try await redis.pipelineChecked([["HSET", Keys.scoresMeta, "halfLifeMs", h], ["HDEL", Keys.scoresMeta, "buildHalfLifeMs"]]) }
        return true
    }

    /// An interaction no rule scores: a qualified customer's CRM record still gets it (coalesced).
    public func touch(customer: String) async throws {
        let (_, r) = try await shards.callFollowingMerges(redis, "score_touch", customer, args: { [$0] })
        try await CustomerStore.appendEmitted(r.last?.strings ?? [], redis: redis)
    }

    /// Days since the epoch in Beijing time (UTC+8), when daily caps reset.
    static func beijingDay(_ ms: Int64) -> Int64 { (ms + 8 * 3_600_000) / 86_400_000 }

}
