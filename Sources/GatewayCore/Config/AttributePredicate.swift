/// An audience predicate on a profile attribute or a customer time, resolved against the declared
/// attributes and the time of evaluation: what `AudienceStore` reads from which index.
public enum AttributePredicate: Sendable, Equatable {
    /// A sorted-set index (`Keys.attributeIndex`, `Keys.lastSeenIndex`, `Keys.customers`) compared by
    /// score: numbers as they are, times in ms since the epoch.
    case ordered(key: String, TagExpression.Comparison, Double)
    /// Equality on a text index: the ASCII-lowercased value (`Keys.attributeIndex`).
    case text(key: String, String)
}

extension CustomerAttributes {
    /// Checks `name cmp value` from an audience expression and resolves it at `nowMs` (relative times
    /// such as `now-30d` count from then). Throws `Invalid` naming the predicate.
    public func predicate(_ name: String, _ cmp: TagExpression.Comparison, _ value: String, nowMs: Int64) throws -> AttributePredicate {
        let field = "\(name)\(cmp.rawValue)\(value)"
        if name == "lastSeen" || name == "created" {
            let key = name == "lastSeen" ? Keys.lastSeenIndex : Keys.customers
            return .ordered(key: key, cmp, Double(try time(value, field: field, nowMs: nowMs)))
        }
        let attr = String(name.dropFirst("profile.".count))
        guard let attribute = attributes[attr] else { throw Invalid(field: field, reason: "unknown attribute \(attr) (declare it in customers.attributes)") }
        guard attribute.indexed else { throw Invalid(field: field, reason: "\(attr) is not indexed (set indexed: true in customers.attributes)") }
        switch attribute.kind {
        case .number:
            guard let n = Double(value), n.isFinite else { throw Invalid(field: field, reason: "\(attr) is a number: compare it with a number") }
            return .ordered(key: Keys.attributeIndex(attr), cmp, n)
        case .datetime:
            return .ordered(key: Keys.attributeIndex(attr), cmp, Double(try time(value, field: field, nowMs: nowMs)))
        default:
            guard cmp == .equal else { throw Invalid(field: field, reason: "\(attr) is \(attribute.kind.name): only = compares it") }
            let stored = try canonical(attr, text: value)
            return .text(key: Keys.attributeIndex(attr), Self.asciiLowercased(stored))
        }
    }

    /// `now`, `now-30d` / `now+7d` (m, h, d or w), a date or an ISO 8601 time, in ms.
    func time(_ value: String, field: String, nowMs: Int64) throws -> Int64 {
        if value.hasPrefix("now") {
            let rest = value.dropFirst(3)
            if rest.isEmpty { return nowMs }
            let units: [Character: Int64] = ["m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000]
            if let sign = rest.first, sign == "+" || sign == "-", let unit = rest.last.flatMap({ units[$0] }),
                let n = Int64(rest.dropFirst().dropLast()), (0...100_000).contains(n)
            {
                return nowMs + (sign == "-" ? -1 : 1) * n * unit
            }
            throw Invalid(field: field, reason: "a relative time is now, now-30d or now+7d (m, h, d or w)")
        }
        guard let ms = Self.datetimeMillis(value, defaultZone: defaultTimeZone) else {
            throw Invalid(field: field, reason: "compare a time with now-30d, now+7d, a date (2026-12-10) or 2026-12-10T09:00:00+08:00")
        }
        return ms
    }

    /// What the Lua index does to text (`string.lower` folds ASCII only).
    public static func asciiLowercased(_ s: String) -> String {
        String(decoding: s.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }, as: UTF8.self)
    }
}
