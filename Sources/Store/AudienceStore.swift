import GatewayCore
import GatewayCrypto
import RedisClient

/// Audiences evaluated in Redis: a tag expression becomes set algebra over `tag:<name>` and the field
/// indexes (`fidx:*`), plus the score sorted set, run as one script. `!x` is "all customers but x";
/// `a & !b` is computed as a difference, without the universe.
public struct AudienceStore: Sendable {
    let redis: RedisPool
    /// The declared attributes (what `profile.<name>` predicates read) and the opt-in rule.
    let attributes: CustomerAttributes
    let requireOptIn: Set<String>
    let shards: IndexShards

    public init(redis: RedisPool, attributes: CustomerAttributes = CustomerAttributes(), requireOptIn: Set<String> = []) {
        self.redis = redis
        shards = IndexShards(redis: redis, attributes: attributes)
        self.attributes = attributes
        self.requireOptIn = requireOptIn
    }

    public init(redis: RedisPool, config: GatewayConfig) {
        self.init(redis: redis, attributes: config.customers.attributes, requireOptIn: config.contactRules.requireOptIn)
    }

    /// The program of an expression at `nowMs` (relative times count from then); throws
    /// `CustomerAttributes.Invalid` for a predicate the attributes refuse.
    func program(_ expression: TagExpression, nowMs: Int64) throws -> AudienceProgram {
        try AudienceProgram(expression, tempPrefix: Self.tempPrefix(), attributes: attributes, requireOptIn: requireOptIn, nowMs: nowMs)
    }

    public struct Preview: Sendable, Equatable {
        public let count: Int
        public let sample: [String]
    }

    /// Counts the audience and picks a random sample; stores nothing. An audience of sets alone (tags
    /// and fields, a few of them negated) is counted with set-intersection counts and sampled by
    /// drawing from its smallest set (`audience_count`); anything else, or an audience too rare in
    /// that set to sample by drawing, is evaluated in full.
    public func preview(_ expression: TagExpression, sample: Int, nowMs: Int64) async throws -> Preview {
        if let plan = AudienceProgram.countPlan(expression, requireOptIn: requireOptIn), shards.layout == .perSlot {
            // Shard by shard: counts summed, each shard's uniform sample merged by a draw weighted by its count.
            let replies = try await shards.readEach(
                redis, "audience_count", keys: { shard in (plan.positive + plan.negative).map { shard.key(single: $0) } },
                args: [String(plan.positive.count), String(sample), String(Self.maxSampleDraws)])
            let parts = replies.map { $0.array ?? [] }
            if parts.allSatisfy({ $0.count == 3 && $0[2].int == 1 }) {
                let counts = parts.map { $0[0].int ?? 0 }
                return Preview(count: counts.reduce(0, +), sample: Self.mergeSamples(parts.map { $0[1].strings }, counts: counts, size: sample))
            }
        } else if let plan = AudienceProgram.countPlan(expression, requireOptIn: requireOptIn) {
            let r = try await redis.fcall(
                StoreFunctions.library, "audience_count", keys: plan.positive + plan.negative,
                args: [String(plan.positive.count), String(sample), String(Self.maxSampleDraws)]
            ).array ?? []
            if r.count == 3, r[2].int == 1 { return Preview(count: r[0].int ?? 0, sample: r[1].strings) }
        }
        return try await run(program(expression, nowMs: nowMs), into: nil, sample: sample)
    }

    /// Up to `size` members drawn from per-shard samples, each pick from a shard with the chance of
    /// its share of the audience still undrawn: a uniform sample of the whole when each shard's is.
    static func mergeSamples(_ samples: [[String]], counts: [Int], size: Int) -> [String] {
        var remaining = counts
        var total = counts.reduce(0, +)
        var taken = [Int](repeating: 0, count: samples.count)
        var out = [String]()
        while out.count < size, total > 0 {
            var r = Int.random(in: 0..<total)
            var i = 0
            while r >= remaining[i] {
                r -= remaining[i]
                i += 1
            }
            if taken[i] < samples[i].count {
                out.append(samples[i][taken[i]])
                taken[i] += 1
                remaining[i] -= 1
                total -= 1
            } else {
                total -= remaining[i]
                remaining[i] = 0
            }
        }
        return out
    }

    /// The most members `audience_count` draws to find a sample before the audience is evaluated in full.
    static let maxSampleDraws = 4096

    /// Members of the smallest set an estimate checks.
    public static let estimateDraws = 4000

    /// An audience's size estimated from a random draw (`audience_estimate`), for a live count as the
    /// marketer types: a few milliseconds where an exact count of a million customers takes hundreds.
    /// Nil when the audience reads more than sets (scores, attributes) or the draw is too thin to say
    /// (a margin over a tenth of the estimate): count it exactly.
    /// On a cluster there is no estimate (a draw would visit every shard, as a count does): nil.
    public func estimate(_ expression: TagExpression, sample: Int) async throws -> AudienceEstimate? {
        guard shards.layout == .single, let plan = AudienceDrawPlan(expression, requireOptIn: requireOptIn) else { return nil }
        let r = try await redis.fcall(
            StoreFunctions.library, "audience_estimate", keys: plan.keys,
            args: [String(plan.anchors), String(sample), String(Self.estimateDraws)] + plan.program
        ).array ?? []
        guard r.count == 4 else { return nil }
        let e = AudienceEstimate(hits: r[0].int ?? 0, checked: r[1].int ?? 0, setSize: r[2].int ?? 0, sample: r[3].strings)
        return e.isPreciseEnough ? e : nil
    }

    /// Evaluates the audience into the set `key` (replacing it); returns its size. On a cluster the
    /// set is kept per shard (`IndexShard.key(single: key)` in each), read with `IndexShards.scanPage`.
    public func snapshot(_ expression: TagExpression, into key: String, nowMs: Int64) async throws -> Int {
        try await run(program(expression, nowMs: nowMs), into: key, sample: 0).count
    }

    public func scoredCustomers() async throws -> Int {
        try await shards.sendEach(redis) { ["ZCARD", $0.key(single: Keys.scores)] }.reduce(0) { $0 + ($1.int ?? 0) }
    }

    /// Runs the program in every shard (`audience_evaluate`, routed by the shard's all-customers
    /// set): counts summed, samples merged by `mergeSamples`.
    private func run(_ p: AudienceProgram, into key: String?, sample: Int) async throws -> Preview {
        let replies = try await shards.readEach(redis, "audience_evaluate") { shard in
            let program = p.inShard(shard)
            return (keys: [shard.key(single: AudienceProgram.all)],
                    args: [program.result, key.map { shard.key(single: $0) } ?? "", String(sample), shard.key(single: p.tempPrefix)] + program.ops)
        }
        let parts = replies.map { $0.array ?? [] }
        let counts = parts.map { $0.first?.int ?? 0 }
        let samples = parts.map { $0.count > 1 ? $0[1].strings : [] }
        return Preview(count: counts.reduce(0, +), sample: samples.count == 1 ? samples[0] : Self.mergeSamples(samples, counts: counts, size: sample))
    }

    static func tempPrefix() -> String { "tmp:aud:" + SecureRandom.alphanumeric(12) + ":" }

}

/// A tag expression as set operations: each op writes a temporary key, `result` names the set that
/// holds the audience (a source key itself when no operation was needed).
struct AudienceProgram {
    let tempPrefix: String
    let attributes: CustomerAttributes
    let requireOptIn: Set<String>
    let nowMs: Int64
    private(set) var ops: [[String]] = []
    private(set) var result = ""

    init(_ e: TagExpression, tempPrefix: String, attributes: CustomerAttributes = CustomerAttributes(), requireOptIn: Set<String> = [], nowMs: Int64 = 0)
        throws
    {
        self.tempPrefix = tempPrefix
        self.attributes = attributes
        self.requireOptIn = requireOptIn
        self.nowMs = nowMs
        result = try compile(e.normalized)
    }

    static let all = Keys.fieldIndex("all")

    /// The most negated terms a count plan takes (its count is 2^n intersection counts).
    static let maxCountPlanNegatives = 3

    /// An audience that is an intersection of stored sets less a few others (`vip & expo & !churned`,
    /// `!churned`), as those sets: what `audience_count` counts without building a set. Nil for any
    /// other shape (alternatives, scores, attributes, more negations).
    static func countPlan(_ e: TagExpression, requireOptIn: Set<String>) -> (positive: [String], negative: [String])? {
        func key(_ e: TagExpression) -> String? { AudienceDrawPlan.key(e, requireOptIn) }
        let terms: [TagExpression]
        switch e.normalized {
        case .and(let all): terms = all
        case let one: terms = [one]
        }
        var positive = [String](), negative = [String]()
        for t in terms {
            if case .not(let inner) = t {
                guard let k = key(inner) else { return nil }
                negative.append(k)
            } else {
                guard let k = key(t) else { return nil }
                positive.append(k)
            }
        }
        guard negative.count <= maxCountPlanNegatives else { return nil }
        if positive.isEmpty { positive = [all] }
        return (positive, negative)
    }

    /// The field index of `field:value`; on opt-in channels only customers who granted consent count
    /// as reachable.
    static func fieldKey(_ f: TagExpression.Field, _ v: String, requireOptIn: Set<String>) -> String {
        if f == .consent, requireOptIn.contains(v) { return Keys.fieldIndex("optin:\(v)") }
        return Keys.fieldIndex("\(f.rawValue):\(v)")
    }

    private mutating func temp(_ op: String, _ args: [String]) -> String {
        let key = tempPrefix + String(ops.count)
        ops.append([op, key, String(args.count)] + args)
        return key
    }

    /// Customers of the sorted set `key` whose score is in the ranges.
    private mutating func range(_ key: String, _ ranges: [String]) -> String {
        let out = tempPrefix + String(ops.count)
        ops.append(["range", out, String(ranges.count / 2), key] + ranges)
        return out
    }

    /// Customers whose score, decayed to now, is in the ranges (the scores index; see Keys.scores).
    private mutating func scores(_ ranges: [String]) -> String {
        let out = tempPrefix + String(ops.count)
        ops.append(["scores", out, String(ranges.count / 2), Keys.scores, String(nowMs), Keys.scoresMeta] + ranges)
        return out
    }

    /// The program as one shard runs it: every key it reads or writes (sources, temporaries, the
    /// scores index's meta) named as in that shard (`IndexShard.key(single:)`).
    func inShard(_ shard: IndexShard) -> (result: String, ops: [String]) {
        let ops = self.ops.map { op -> [String] in
            var op = op
            op[1] = shard.key(single: op[1])
            switch op[0] {
            case "range", "lex": op[3] = shard.key(single: op[3])
            case "scores":
                op[3] = shard.key(single: op[3])
                op[5] = shard.key(single: op[5])
            default:
                for k in 3..<(3 + (Int(op[2]) ?? 0)) { op[k] = shard.key(single: op[k]) }
            }
            return op
        }
        return (shard.key(single: result), ops.flatMap { $0 })
    }

    private mutating func compile(_ e: TagExpression) throws -> String {
        switch e {
        case .tag(let t): return Keys.tag(t)
        case .field(let f, let v): return Self.fieldKey(f, v, requireOptIn: requireOptIn)
        case .score(let cmp, let n):
            // Customers without a score have 0: when 0 matches, take everyone but the non-matching scores.
            if Self.matches(cmp, n, 0) { return temp("diff", [Self.all, scores(Self.scoreRanges(cmp, n, negated: true))]) }
            return scores(Self.scoreRanges(cmp, n, negated: false))
        case .attribute(let name, let cmp, let value):
            // Customers without the attribute match no comparison.
            switch try attributes.predicate(name, cmp, value, nowMs: nowMs) {
            case .ordered(let key, let cmp, let v): return range(key, Self.ranges(cmp, Self.scoreText(v), negated: false))
            case .text(let key, let lowered):
                let out = tempPrefix + String(ops.count)
                ops.append(["lex", out, "1", key, lowered])
                return out
            }
        case .not(let inner): return temp("diff", [Self.all, try compile(inner)])
        case .or(let terms): return temp("union", try terms.map { try compile($0) })
        case .and(let terms):
            var positive = [String]()
            var negative = [String]()
            for t in terms {
                if case .not(let inner) = t { negative.append(try compile(inner)) } else { positive.append(try compile(t)) }
            }
            if positive.isEmpty { positive = [Self.all] }
            let base = positive.count == 1 ? positive[0] : temp("inter", positive)
            return negative.isEmpty ? base : temp("diff", [base] + negative)
        }
    }

    static func matches(_ cmp: TagExpression.Comparison, _ n: Int, _ value: Int) -> Bool {
        switch cmp {
        case .atLeast: value >= n
        case .atMost: value <= n
        case .greater: value > n
        case .less: value < n
        case .equal: value == n
        }
    }

    /// Ranges of scores: as `ranges`, but `score=n` means the score rounds to n (decayed scores are
    /// seldom whole), n - 0.5 up to but not including n + 0.5.
    static func scoreRanges(_ cmp: TagExpression.Comparison, _ n: Int, negated: Bool) -> [String] {
        guard cmp == .equal else { return ranges(cmp, String(n), negated: negated) }
        let lo = scoreText(Double(n) - 0.5), hi = scoreText(Double(n) + 0.5)
        return negated ? ["-inf", "(" + lo, hi, "+inf"] : [lo, "(" + hi]
    }

    /// A score bound as Redis reads it (whole numbers without `.0`).
    static func scoreText(_ v: Double) -> String { v == v.rounded() && abs(v) < 9e15 ? String(Int64(v)) : String(v) }

    /// ZRANGE BYSCORE bounds (min, max pairs) of the scores that match, or (negated) that do not.
    static func ranges(_ cmp: TagExpression.Comparison, _ v: String, negated: Bool) -> [String] {
        switch (cmp, negated) {
        case (.atLeast, false), (.less, true): return [v, "+inf"]
        case (.greater, false), (.atMost, true): return ["(" + v, "+inf"]
        case (.atMost, false), (.greater, true): return ["-inf", v]
        case (.less, false), (.atLeast, true): return ["-inf", "(" + v]
        case (.equal, false): return [v, v]
        case (.equal, true): return ["-inf", "(" + v, "(" + v, "+inf"]
        }
    }
}

extension AudienceStore {
    /// One customer of an export: hash fields, identities (storage forms), tags.
    public typealias ExportRow = (id: String, hash: [String: String], identities: [String], tags: [String])

    /// Reads the customers an expression selects a page at a time (bounded memory): the audience is
    /// evaluated into a temporary set (an hour's expiry, removed by `close`), then read with SSCAN
    /// and each page's customers in one pipeline.
    public struct Export: Sendable {
        let redis: RedisPool
        let shards: IndexShards
        let key: String
        let pageSize: Int
        /// When the export started: scores are read as they were then (decayed).
        let nowMs: Int64
        private(set) var cursor: String? = "0"

        /// The next page (possibly empty), or nil at the end.
        public mutating func next() async throws -> [ExportRow]? {
            guard let cursor else { return nil }
            let (ids, next) = try await shards.scanPage(redis, { $0.key(single: key) }, cursor: cursor, limit: pageSize)
            self.cursor = next
            if ids.isEmpty { return [] }
            let replies = try await redis.pipelineChecked(
                ids.flatMap { [["HGETALL", Keys.customer($0)], ["SMEMBERS", Keys.customerIdentities($0)], ["SMEMBERS", Keys.customerTags($0)]] })
            let scored = ids.indices.filter { replies[3 * $0].dictionary["score"] != nil }
            let scores = try await ScoreStore(redis: redis).current(scored.map { ids[$0] }, nowMs: nowMs)
            let decayed = Dictionary(uniqueKeysWithValues: zip(scored, scores))
            return ids.enumerated().compactMap { i, id -> ExportRow? in
                var hash = replies[3 * i].dictionary
                guard hash["createdAt"] != nil, hash["mergedInto"] == nil else { return nil }
                if let score = decayed[i] ?? nil { hash["score"] = String(format: "%.4f", score) }
                return (id, hash, replies[3 * i + 1].strings, replies[3 * i + 2].strings)
            }
        }

        public func close() async { _ = try? await shards.sendEach(redis) { ["DEL", $0.key(single: key)] } }
    }

    /// Starts an export of the audience as it is now.
    public func export(_ expression: TagExpression, nowMs: Int64, pageSize: Int = 500) async throws -> Export {
        let key = "tmp:export:" + SecureRandom.alphanumeric(16)
        _ = try await snapshot(expression, into: key, nowMs: nowMs)
        _ = try await shards.sendEach(redis) { ["EXPIRE", $0.key(single: key), "3600"] }
        return Export(redis: redis, shards: shards, key: key, pageSize: pageSize, nowMs: nowMs)
    }
}
