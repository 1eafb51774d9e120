/// An audience: tags combined with `&` (and), `|` (or), `!` (not) and parentheses, plus predicates
/// on indexed fields: `vip & (expo-2026 | webinar) & !churned & score>=50 & consent:sms`.
///
/// `!` binds tightest, then `&`, then `|`. Words that start with `stage:`, `tier:`, `consent:` or
/// `account:` are predicates, not tags; `score` must be followed by a comparison.
///
/// Profile attributes and times compare too: `profile.spend>=1000`, `profile.city=Shanghai`,
/// `profile.expo_date<now+7d`, `lastSeen>now-30d`, `created>=2026-01-01`. The value is kept as
/// written (a quoted "New York" without its quotes); `CustomerAttributes` decides what it means.
public indirect enum TagExpression: Sendable, Equatable {
    case tag(String)
    case field(Field, String)
    case score(Comparison, Int)
    /// `profile.<name>`, `lastSeen` or `created`, compared with a value.
    case attribute(String, Comparison, String)
    case not(TagExpression)
    case and([TagExpression])
    case or([TagExpression])

    public enum Field: String, Sendable, CaseIterable {
        case stage, tier, consent, account
    }

    public enum Comparison: String, Sendable, CaseIterable {
        case atLeast = ">=", atMost = "<=", greater = ">", less = "<", equal = "="
    }

    /// Why an expression does not parse: where (a character offset) and what was expected there.
    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public let position: Int
        public let expected: String
        public let found: String

        public var description: String { "at position \(position): expected \(expected), found \(found)" }
    }

    public static let maxLength = 4096
    static let maxDepth = 64

    public static func parse(_ text: String) throws -> TagExpression {
        guard text.count <= maxLength else { throw ParseError(position: maxLength, expected: "at most \(maxLength) characters", found: "more") }
        var parser = Parser(chars: Array(text))
        let e = try parser.or(depth: 0)
        parser.skipSpaces()
        if parser.i < parser.chars.count {
            throw parser.error(expected: parser.chars[parser.i] == ")" ? "an operator (no '(' to close)" : "an operator & or |")
        }
        return e
    }

    /// Tag names the expression mentions, for checking they exist.
    public var tags: Set<String> {
        switch self {
        case .tag(let t): [t]
        case .field, .score, .attribute: []
        case .not(let e): e.tags
        case .and(let es), .or(let es): es.reduce(into: Set()) { $0.formUnion($1.tags) }
        }
    }

    /// Whether a `score` comparison appears.
    public var mentionsScore: Bool {
        switch self {
        case .score: true
        case .tag, .field, .attribute: false
        case .not(let e): e.mentionsScore
        case .and(let es), .or(let es): es.contains { $0.mentionsScore }
        }
    }

    private struct Parser {
        let chars: [Character]
        var i = 0

        mutating func skipSpaces() { while i < chars.count, chars[i].isWhitespace { i += 1 } }

        func error(expected: String) -> ParseError {
            ParseError(position: i, expected: expected, found: i < chars.count ? "'\(chars[i])'" : "the end")
        }

        mutating func or(depth: Int) throws -> TagExpression {
            var terms = [try and(depth: depth)]
            while true {
                skipSpaces()
                guard i < chars.count, chars[i] == "|" else { break }
                i += 1
                terms.append(try and(depth: depth))
            }
            return terms.count == 1 ? terms[0] : .or(terms)
        }

        mutating func and(depth: Int) throws -> TagExpression {
            var terms = [try unary(depth: depth)]
            while true {
                skipSpaces()
                guard i < chars.count, chars[i] == "&" else { break }
                i += 1
                terms.append(try unary(depth: depth))
            }
            return terms.count == 1 ? terms[0] : .and(terms)
        }

        mutating func unary(depth: Int) throws -> TagExpression {
            guard depth < TagExpression.maxDepth else { throw error(expected: "less nesting (at most \(TagExpression.maxDepth) levels)") }
            skipSpaces()
            guard i < chars.count else { throw error(expected: "a tag, a predicate, '!' or '('") }
            switch chars[i] {
            case "!":
                i += 1
                return .not(try unary(depth: depth + 1))
            case "(":
                i += 1
                let inner = try or(depth: depth + 1)
                skipSpaces()
                guard i < chars.count, chars[i] == ")" else { throw error(expected: "')'") }
                i += 1
                return inner
            default:
                return try word()
            }
        }

        static func isWordChar(_ c: Character) -> Bool {
            c.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || ("0"..."9").contains($0) || "-_:.".unicodeScalars.contains($0) }
        }

        /// A compared value: "quoted text" (no quote inside), or a run of characters up to a space,
        /// an operator or a parenthesis.
        mutating func value() throws -> String {
            if i < chars.count, chars[i] == "\"" {
                let start = i
                i += 1
                let from = i
                while i < chars.count, chars[i] != "\"" { i += 1 }
                guard i < chars.count, i > from else {
                    i = start
                    throw error(expected: "a closing \" after a non-empty value")
                }
                i += 1
                return String(chars[from..<(i - 1)])
            }
            // A combining mark cannot start a value: written after the operator it would fuse with it.
            if i < chars.count, TagName.isMark(chars[i].unicodeScalars.first!) { throw error(expected: "a value that does not start with a combining mark") }
            let start = i
            while i < chars.count, !chars[i].isWhitespace, !"&|()!\"".contains(chars[i]) { i += 1 }
            guard i > start else { throw error(expected: "a value to compare with") }
            return String(chars[start..<i])
        }

        mutating func word() throws -> TagExpression {
            let start = i
            // A combining mark cannot start a word: it would fuse with the character written before it.
            guard i < chars.count, !TagName.isMark(chars[i].unicodeScalars.first!) else { throw error(expected: "a tag, a predicate, '!' or '('") }
            while i < chars.count, Self.isWordChar(chars[i]) { i += 1 }
            guard i > start else { throw error(expected: "a tag, a predicate, '!' or '('") }
            let w = String(chars[start..<i])
            if w == "score" {
                skipSpaces()
                var op = ""
                while i < chars.count, "<>=".contains(chars[i]), op.count < 2 { op.append(chars[i]); i += 1 }
                guard let comparison = Comparison(rawValue: op) else { throw error(expected: "a comparison (>=, <=, >, <, =) after score") }
                skipSpaces()
                let numberStart = i
                if i < chars.count, chars[i] == "-" { i += 1 }
                while i < chars.count, chars[i].isASCII, chars[i].isNumber { i += 1 }
                guard let n = Int(String(chars[numberStart..<i])), abs(n) < 1_000_000_000 else {
                    i = numberStart
                    throw error(expected: "a whole number")
                }
                return .score(comparison, n)
            }
            if w.hasPrefix("profile.") || w == "lastSeen" || w == "created" {
                skipSpaces()
                var op = ""
                while i < chars.count, "<>=".contains(chars[i]), op.count < 2 { op.append(chars[i]); i += 1 }
                guard let comparison = Comparison(rawValue: op) else { throw error(expected: "a comparison (>=, <=, >, <, =) after \(w)") }
                skipSpaces()
                return .attribute(w, comparison, try value())
            }
            if let colon = w.firstIndex(of: ":"), let field = Field(rawValue: String(w[..<colon])) {
                let value = String(w[w.index(after: colon)...])
                guard !value.isEmpty else { throw error(expected: "a value after \(field.rawValue):") }
                return .field(field, value)
            }
            guard TagName.isValid(w) else {
                i = start
                throw error(expected: "a tag name (\(TagName.rule))")
            }
            return .tag(w)
        }
    }
}
