import GatewayCore
import RedisClient

extension AudienceStore {
    /// Whether one customer is in the audience an expression selects at `nowMs`, read from the indexes
    /// the audience programs read (tag sets, field indexes, attribute indexes, decayed scores), a
    /// handful of reads instead of evaluating the whole audience: what a journey branch asks.
    public func contains(_ expression: TagExpression, customer: String, nowMs: Int64) async throws -> Bool {
        var leaves = [TagExpression]()
        Self.collectLeaves(expression, into: &leaves)
        var commands = [[String]]()
        var scoreAt = [Int]()
        // The customer's own shard of each index (one slot on a cluster).
        let shard = shards.layout.shard(customer: customer)
        for (i, leaf) in leaves.enumerated() {
            switch leaf {
            case .tag(let t): commands.append(["SISMEMBER", shard.key(single: Keys.tag(t)), customer])
            case .field(let f, let v): commands.append(["SISMEMBER", shard.key(single: AudienceProgram.fieldKey(f, v, requireOptIn: requireOptIn)), customer])
            case .attribute(let name, let cmp, let value):
                switch try attributes.predicate(name, cmp, value, nowMs: nowMs) {
                case .ordered(let key, _, _): commands.append(["ZSCORE", shard.key(single: key), customer])
                case .text(let key, let lowered): commands.append(["ZSCORE", shard.key(single: key), lowered + "\u{1F}" + customer])
                }
            case .score:
                scoreAt.append(i)
                commands.append(["PING"])
            default: continue
            }
        }
        var replies = commands.isEmpty ? [] : try await redis.pipelineChecked(commands)
        if !scoreAt.isEmpty {
            let score = try await ScoreStore(redis: redis).current([customer], nowMs: nowMs).first ?? nil
            for i in scoreAt { replies[i] = .status(String(score ?? 0)) }
        }
        return try evaluate(expression, Leaves(leaves: leaves, replies: replies), nowMs: nowMs)
    }

    static func collectLeaves(_ e: TagExpression, into out: inout [TagExpression]) {
        switch e {
        case .not(let inner): collectLeaves(inner, into: &out)
        case .and(let es), .or(let es): for x in es { collectLeaves(x, into: &out) }
        default: if !out.contains(e) { out.append(e) }
        }
    }

    /// Each leaf's reply (TagExpression is not Hashable; an expression has a handful of leaves).
    struct Leaves {
        let leaves: [TagExpression]
        let replies: [RedisValue]

        subscript(_ e: TagExpression) -> RedisValue? { leaves.firstIndex(of: e).map { replies[$0] } }
    }

    private func evaluate(_ e: TagExpression, _ values: Leaves, nowMs: Int64) throws -> Bool {
        switch e {
        case .tag, .field: return values[e]?.int == 1
        case .score(let cmp, let n):
            // As the audience programs: `score=n` means the score rounds to n; no score is 0.
            let v = Double(values[e]?.string ?? "") ?? 0
            if cmp == .equal { return v >= Double(n) - 0.5 && v < Double(n) + 0.5 }
            return Self.compare(v, cmp, Double(n))
        case .attribute(let name, let cmp, let value):
            guard let stored = values[e]?.string else { return false }  // without the attribute, no comparison matches
            switch try attributes.predicate(name, cmp, value, nowMs: nowMs) {
            case .ordered(_, let cmp, let bound): return Double(stored).map { Self.compare($0, cmp, bound) } ?? false
            case .text: return true
            }
        case .not(let inner): return try !evaluate(inner, values, nowMs: nowMs)
        case .and(let es): return try es.allSatisfy { try evaluate($0, values, nowMs: nowMs) }
        case .or(let es): return try es.contains { try evaluate($0, values, nowMs: nowMs) }
        }
    }

    static func compare(_ v: Double, _ cmp: TagExpression.Comparison, _ bound: Double) -> Bool {
        switch cmp {
        case .atLeast: v >= bound
        case .atMost: v <= bound
        case .greater: v > bound
        case .less: v < bound
        case .equal: v == bound
        }
    }
}

extension AudienceStore {
    /// One member of the audience without evaluating all of it (a campaign preview's sample): random
    /// members of a set the expression requires (a tag or field leaf at its top level), the first that
    /// is in the audience. Nil when the expression names no such set or no candidate qualifies; the
    /// caller then evaluates the audience (`preview`).
    /// On a cluster the sets are per shard, mostly tiny: nil, and the caller evaluates the audience.
    public func sampleMember(_ expression: TagExpression, nowMs: Int64, candidates: Int = 64) async throws -> String? {
        guard shards.layout == .single else { return nil }
        let required: [TagExpression] = if case .and(let items) = expression { items } else { [expression] }
        let anchor = required.lazy.compactMap { leaf -> String? in
            switch leaf {
            case .tag(let t): Keys.tag(t)
            case .field(let f, let v): AudienceProgram.fieldKey(f, v, requireOptIn: self.requireOptIn)
            default: nil
            }
        }.first
        guard let anchor else { return nil }
        for id in try await redis.send("SRANDMEMBER", anchor, String(candidates)).strings {
            if try await contains(expression, customer: id, nowMs: nowMs) { return id }
        }
        return nil
    }
}
