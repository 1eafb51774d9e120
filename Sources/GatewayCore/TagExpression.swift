/// An audience: tags combined with `&` (and), `|` (or), `!` (not) and parentheses, plus predicates
/// on indexed fields: `vip & (expo-2026 | webinar) & !churned & score>=50 & consent:sms`.
///
/// `!` binds tightest, then `&`, then `|`. Words that start with `stage:`, `tier:`, `consent:` or
/// `account:` are predicates, not tags; `score` must be followed by a comparison.
public indirect enum TagExpression: Sendable, Equatable {
    case tag(String)
    case field(Field, String)
    case score(Comparison, Int)
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
        case .field, .score: []
        case .not(let e): e.tags
        case .and(let es), .or(let es): es.reduce(into: Set()) { $0.formUnion($1.tags) }
        }
    }

    /// Whether a `score` comparison appears.
    public var mentionsScore: Bool {
        switch self {
        case .score: true
        case .tag, .field: false
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
