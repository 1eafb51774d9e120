import GatewayCore
import GatewayCrypto
import RedisClient

/// Audiences evaluated in Redis: a tag expression becomes set algebra over `tag:<name>` and the field
/// indexes (`fidx:*`), plus the score sorted set, run as one script. `!x` is "all customers but x";
/// `a & !b` is computed as a difference, without the universe.
public struct AudienceStore: Sendable {
    let redis: RedisPool

    public init(redis: RedisPool) { self.redis = redis }

    public struct Preview: Sendable, Equatable {
        public let count: Int
        public let sample: [String]
    }

    /// Counts the audience and picks a random sample; stores nothing.
    public func preview(_ expression: TagExpression, sample: Int) async throws -> Preview {
        let r = try await run(AudienceProgram(expression, tempPrefix: Self.tempPrefix()), into: nil, sample: sample).array ?? []
        return Preview(count: r.first?.int ?? 0, sample: r.count > 1 ? r[1].strings : [])
    }

    /// Evaluates the audience into the set `key` (replacing it); returns its size.
    public func snapshot(_ expression: TagExpression, into key: String) async throws -> Int {
        let r = try await run(AudienceProgram(expression, tempPrefix: Self.tempPrefix()), into: key, sample: 0).array ?? []
        return r.first?.int ?? 0
    }

    public func scoredCustomers() async throws -> Int { try await redis.send("ZCARD", Keys.scores).int ?? 0 }

    private func run(_ p: AudienceProgram, into key: String?, sample: Int) async throws -> RedisValue {
        try await redis.eval(Self.script, keys: [], args: [p.result, key ?? "", String(sample), p.tempPrefix] + p.ops.flatMap { $0 })
    }

    static func tempPrefix() -> String { "tmp:aud:" + SecureRandom.alphanumeric(12) + ":" }

    // ARGV: result key, destination ('' = preview only), sample size, temp prefix, then ops:
    // name, dest, n, n sources (inter, union, diff: first minus the rest) or n (min, max) score ranges.
    static let script = RedisScript(
        name: "audience",
        source: #"""
            local result, dest, sample, prefix = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
            local temps = {}
            local i = 5
            while i <= #ARGV do
              local op, out, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
              temps[#temps + 1] = out
              if op == 'score' then
                redis.call('DEL', out)
                for r = 0, n - 1 do
                  local lo, hi = ARGV[i + 3 + 2 * r], ARGV[i + 4 + 2 * r]
                  local offset = 0
                  repeat
                    local ids = redis.call('ZRANGE', 'scores', lo, hi, 'BYSCORE', 'LIMIT', offset, 5000)
                    if #ids > 0 then redis.call('SADD', out, unpack(ids)) end
                    offset = offset + #ids
                  until #ids < 5000
                end
                i = i + 3 + 2 * n
              else
                local cmd = ({ inter = 'SINTERSTORE', union = 'SUNIONSTORE', diff = 'SDIFFSTORE' })[op]
                redis.call(cmd, out, unpack(ARGV, i + 3, i + 2 + n))
                i = i + 3 + n
              end
            end
            local count = redis.call('SCARD', result)
            local picked = {}
            if sample > 0 then picked = redis.call('SRANDMEMBER', result, sample) end
            if dest ~= '' then
              if string.sub(result, 1, #prefix) == prefix then redis.call('RENAME', result, dest)
              else redis.call('SUNIONSTORE', dest, result) end
            end
            for _, t in ipairs(temps) do redis.call('DEL', t) end
            return { count, picked }
            """#)
}

/// A tag expression as set operations: each op writes a temporary key, `result` names the set that
/// holds the audience (a source key itself when no operation was needed).
struct AudienceProgram {
    let tempPrefix: String
    private(set) var ops: [[String]] = []
    private(set) var result = ""

    init(_ e: TagExpression, tempPrefix: String) {
        self.tempPrefix = tempPrefix
        result = compile(e)
    }

    static let all = Keys.fieldIndex("all")

    private mutating func temp(_ op: String, _ args: [String]) -> String {
        let key = tempPrefix + String(ops.count)
        ops.append([op, key, String(op == "score" ? args.count / 2 : args.count)] + args)
        return key
    }

    private mutating func compile(_ e: TagExpression) -> String {
        switch e {
        case .tag(let t): return Keys.tag(t)
        case .field(let f, let v): return Keys.fieldIndex("\(f.rawValue):\(v)")
        case .score(let cmp, let n):
            // Customers without a score have 0: when 0 matches, take everyone but the non-matching scores.
            if Self.matches(cmp, n, 0) { return temp("diff", [Self.all, temp("score", Self.ranges(cmp, n, negated: true))]) }
            return temp("score", Self.ranges(cmp, n, negated: false))
        case .not(let inner): return temp("diff", [Self.all, compile(inner)])
        case .or(let terms): return temp("union", terms.map { compile($0) })
        case .and(let terms):
            var positive = [String]()
            var negative = [String]()
            for t in terms {
                if case .not(let inner) = t { negative.append(compile(inner)) } else { positive.append(compile(t)) }
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

    /// ZRANGE BYSCORE bounds (min, max pairs) of the scores that match, or (negated) that do not.
    static func ranges(_ cmp: TagExpression.Comparison, _ n: Int, negated: Bool) -> [String] {
        let v = String(n)
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
