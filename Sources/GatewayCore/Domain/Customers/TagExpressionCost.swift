/// What an audience expression costs to evaluate, and the form that costs least.
///
/// Redis evaluates `!x` as "all customers minus x", a pass over every customer. `normalized` pushes
/// negations down (De Morgan) so that they become differences inside an `&` wherever possible: `!a | !b
/// | !c` is `!(a & b & c)`, one pass instead of three. `cost` counts what the normalized form needs:
/// the terms it reads and the passes over all customers.
extension TagExpression {
    public struct Cost: Sendable, Equatable {
        public let terms: Int
        public let fullScans: Int
    }

    /// Terms (tags, predicates) an expression may read.
    public static let maxTerms = 64
    /// Passes over every customer (a negation that no positive term bounds) an expression may need.
    public static let maxFullScans = 2

    /// The same audience, with negations absorbed into differences where they can be.
    public var normalized: TagExpression {
        switch self {
        case .tag, .field, .attribute, .score: return self
        case .not(let inner):
            switch inner.normalized {
            case .not(let x): return x
            case .or(let terms): return TagExpression.and(terms.map { Self.negate($0) }).normalized
            case let n: return .not(n)
            }
        case .and(let terms):
            var flat = [TagExpression]()
            for t in terms.map(\.normalized) { if case .and(let inner) = t { flat += inner } else { flat.append(t) } }
            return flat.count == 1 ? flat[0] : .and(flat)
        case .or(let terms):
            var flat = [TagExpression]()
            for t in terms.map(\.normalized) { if case .or(let inner) = t { flat += inner } else { flat.append(t) } }
            if flat.count == 1 { return flat[0] }
            // An alternative with a negation: "not (all of the others negated)", one pass in all.
            guard flat.contains(where: { if case .not = $0 { true } else { false } }) else { return .or(flat) }
            return .not(TagExpression.and(flat.map { Self.negate($0) }).normalized)
        }
    }

    static func negate(_ e: TagExpression) -> TagExpression {
        if case .not(let x) = e { return x }
        return .not(e)
    }

    /// The cost of the normalized form (evaluate that one).
    public var cost: Cost {
        let n = normalized
        return Cost(terms: n.termCount, fullScans: n.scans)
    }

    var termCount: Int {
        switch self {
        case .tag, .field, .attribute, .score: 1
        case .not(let e): e.termCount
        case .and(let es), .or(let es): es.reduce(0) { $0 + $1.termCount }
        }
    }

    /// Passes over all customers, as AudienceProgram compiles it: a negation outside an `&` with a
    /// positive term, an `&` of negations only, and `score` comparisons that 0 satisfies.
    var scans: Int {
        switch self {
        case .tag, .field, .attribute: return 0
        case .score(let cmp, let n):
            let zeroMatches: Bool
            switch cmp {
            case .atLeast: zeroMatches = 0 >= n
            case .atMost: zeroMatches = 0 <= n
            case .greater: zeroMatches = 0 > n
            case .less: zeroMatches = 0 < n
            case .equal: zeroMatches = n == 0
            }
            return zeroMatches ? 1 : 0
        case .not(let e): return 1 + e.scans
        case .or(let es): return es.reduce(0) { $0 + $1.scans }
        case .and(let es):
            var total = 0
            var positive = false
            for t in es {
                if case .not(let inner) = t { total += inner.scans } else { total += t.scans; positive = true }
            }
            return total + (positive ? 0 : 1)
        }
    }

    /// Refuses an expression over the limits, naming which and by how much.
    public func checkCost() throws(CostError) {
        let c = cost
        if c.terms > Self.maxTerms { throw CostError(reason: "the expression reads \(c.terms) terms; at most \(Self.maxTerms)") }
        if c.fullScans > Self.maxFullScans {
            throw CostError(
                reason:
                    "the expression needs \(c.fullScans) passes over all customers (a negation with nothing positive beside it, or score comparisons 0 meets); at most \(Self.maxFullScans): add a positive term, e.g. vip & !churned"
            )
        }
    }

    public struct CostError: Error, Sendable, Equatable {
        public let reason: String
    }
}
