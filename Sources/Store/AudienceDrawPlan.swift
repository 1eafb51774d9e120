import GatewayCore

/// What `audience_estimate` runs: the sets a random draw may come from (`anchors`: the tags and
/// fields every member must have; all customers when there is none), every set the expression
/// reads, and the expression as a postfix program over membership of those sets (`k<i>` for
/// KEYS[i], then `!`, `&`, `|`). Only for expressions of tags and fields: nil when one reads a
/// score or an attribute.
struct AudienceDrawPlan: Equatable {
    private(set) var keys: [String] = []
    private(set) var anchors = 0
    private(set) var program: [String] = []

    init?(_ expression: TagExpression, requireOptIn: Set<String>) {
        let e = expression.normalized
        let terms: [TagExpression]
        if case .and(let all) = e { terms = all } else { terms = [e] }
        for t in terms {
            if let k = Self.key(t, requireOptIn), !keys.contains(k) { keys.append(k) }
        }
        if keys.isEmpty { keys = [AudienceProgram.all] }
        anchors = keys.count
        guard emit(e, requireOptIn) else { return nil }
    }

    static func key(_ e: TagExpression, _ requireOptIn: Set<String>) -> String? {
        switch e {
        case .tag(let t): return Keys.tag(t)
        case .field(let f, let v): return AudienceProgram.fieldKey(f, v, requireOptIn: requireOptIn)
        default: return nil
        }
    }

    private mutating func emit(_ e: TagExpression, _ requireOptIn: Set<String>) -> Bool {
        switch e {
        case .tag, .field:
            guard let k = Self.key(e, requireOptIn) else { return false }
            if !keys.contains(k) { keys.append(k) }
            program.append("k\(keys.firstIndex(of: k)! + 1)")
            return true
        case .not(let inner):
            guard emit(inner, requireOptIn) else { return false }
            program.append("!")
            return true
        case .and(let terms), .or(let terms):
            let op: String
            if case .and = e { op = "&" } else { op = "|" }
            for (i, t) in terms.enumerated() {
                guard emit(t, requireOptIn) else { return false }
                if i > 0 { program.append(op) }
            }
            return true
        case .score, .attribute: return false
        }
    }
}
