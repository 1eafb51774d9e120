/// A regular expression for keyword replies that cannot hang a webhook: a Pike VM (Thompson NFA
/// simulation) runs in time linear in the input, and every match has a step budget, so no pattern a
/// marketer writes can stall the 5-second answer WeChat waits for. Swift's `Regex` backtracks and
/// ignores task cancellation, which is why this exists.
///
/// Syntax: literals, `.`, classes `[a-z]`, `[^...]`, `\d \w \s \D \W \S`, escapes of `\ . * + ? ( ) [ ] { } | ^ $ /`,
/// groups `( )` and `(?: )`, `|`, `* + ?` (a lazy `?` after them is accepted and means the same for
/// a yes/no match), `{n}`, `{n,}`, `{n,m}` (n, m <= 100), and `^`/`$` anchoring the whole text.
/// Back-references and look-around are refused. A search: the pattern may match anywhere unless anchored.
public struct BoundedRegex: Sendable {
    public struct SyntaxError: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    public enum Outcome: Sendable, Equatable { case match, noMatch, overBudget }

    /// The longest pattern accepted (characters) and the largest compiled program.
    public static let maxPatternLength = 256
    public static let maxProgram = 4_000
    /// VM steps one match may take (each a few nanoseconds): the "time limit".
    public static let defaultBudget = 2_000_000

    enum Inst: Sendable {
        case char(Unicode.Scalar)
        case any
        case set(CharSet)
        case split(Int, Int)
        case jump(Int)
        case start
        case end
        case match
    }

    struct CharSet: Sendable {
        var ranges: [ClosedRange<UInt32>]
        var negated: Bool
        func contains(_ s: Unicode.Scalar) -> Bool { ranges.contains { $0.contains(s.value) } != negated }
    }

    let program: [Inst]
    public let pattern: String
    public let caseSensitive: Bool

    public init(_ pattern: String, caseSensitive: Bool = false) throws {
        guard !pattern.isEmpty, pattern.count <= Self.maxPatternLength else {
            throw SyntaxError(description: "a pattern is 1 to \(Self.maxPatternLength) characters")
        }
        self.pattern = pattern
        self.caseSensitive = caseSensitive
        var parser = Parser(scalars: Array(pattern.unicodeScalars), fold: !caseSensitive)
        let node = try parser.parseAlternation()
        if parser.index < parser.scalars.count { throw SyntaxError(description: "unbalanced ')' at \(parser.index + 1)") }
        var code = [Inst]()
        try Self.emit(node, into: &code)
        code.append(.match)
        program = code
    }

    public func matches(_ text: String) -> Bool { evaluate(text) == .match }

    /// Runs the VM over `text`; `.overBudget` when it needed more than `budget` steps.
    public func evaluate(_ text: String, budget: Int = BoundedRegex.defaultBudget) -> Outcome {
        let input = Array((caseSensitive ? text : text.lowercased()).unicodeScalars)
        var current = [Int]()
        var next = [Int]()
        var mark = [Int](repeating: -1, count: program.count)
        var steps = 0
        var stack = [Int]()

        // Adds pc and what it reaches without consuming input at position i (generation i).
        func add(_ pc0: Int, at i: Int, to list: inout [Int]) -> Bool {
            stack.append(pc0)
            while let pc = stack.popLast() {
                if mark[pc] == i { continue }
                mark[pc] = i
                steps += 1
                switch program[pc] {
                case .split(let a, let b):
                    stack.append(b)
                    stack.append(a)
                case .jump(let a): stack.append(a)
                case .start: if i == 0 { stack.append(pc + 1) }
                case .end: if i == input.count { stack.append(pc + 1) }
                case .match: return true
                default: list.append(pc)
                }
            }
            return false
        }

        for i in 0...input.count {
            // Unanchored search: a thread starts at every position.
            if add(0, at: i, to: &current) { return .match }
            if i == input.count { break }
            let c = input[i]
            next.removeAll(keepingCapacity: true)
            for pc in current {
                steps += 1
                let ok: Bool
                switch program[pc] {
                case .char(let s): ok = s == c
                case .any: ok = c != "\n"
                case .set(let set): ok = set.contains(c)
                default: ok = false
                }
                if ok, add(pc + 1, at: i + 1, to: &next) { return .match }
            }
            if steps > budget { return .overBudget }
            swap(&current, &next)
        }
        return .noMatch
    }

    // MARK: - Parsing

    indirect enum Node {
        case empty
        case char(Unicode.Scalar)
        case any
        case set(CharSet)
        case start
        case end
        case concat([Node])
        case alternate([Node])
        case repeated(Node, min: Int, max: Int?)
    }

    struct Parser {
        let scalars: [Unicode.Scalar]
        /// Case-insensitive: literals are lowercased, as the text is.
        let fold: Bool
        var index = 0

        func folded(_ c: Unicode.Scalar) -> Unicode.Scalar {
            guard fold, c.properties.changesWhenLowercased, let l = String(c).lowercased().unicodeScalars.first else { return c }
            return l
        }

        mutating func parseAlternation() throws -> Node {
            var branches = [try parseConcat()]
            while peek == "|" {
                index += 1
                branches.append(try parseConcat())
            }
            return branches.count == 1 ? branches[0] : .alternate(branches)
        }

        var peek: Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }

        func fail(_ what: String) -> SyntaxError { SyntaxError(description: "\(what) at \(index + 1)") }

        mutating func parseConcat() throws -> Node {
            var items = [Node]()
            while let c = peek, c != "|", c != ")" {
                var atom = try parseAtom()
                while let q = peek, q == "*" || q == "+" || q == "?" || q == "{" {
                    if case .start = atom { throw fail("nothing to repeat") }
                    if case .end = atom { throw fail("nothing to repeat") }
                    let (lo, hi) = try parseQuantifier()
                    atom = .repeated(atom, min: lo, max: hi)
                    if peek == "?" { index += 1 }  // lazy: the same yes/no answer
                    if let q2 = peek, q2 == "*" || q2 == "+" || q2 == "{" { throw fail("nested quantifier") }
                }
                items.append(atom)
            }
            return items.count == 1 ? items[0] : .concat(items)
        }

        mutating func parseQuantifier() throws -> (Int, Int?) {
            let q = scalars[index]
            index += 1
            switch q {
            case "*": return (0, nil)
            case "+": return (1, nil)
            case "?": return (0, 1)
            default:
                let lo = try number()
                var hi: Int? = lo
                if peek == "," {
                    index += 1
                    hi = peek == "}" ? nil : try number()
                }
                guard peek == "}" else { throw fail("expected '}'") }
                index += 1
                guard lo <= 100, (hi ?? lo) <= 100, lo <= (hi ?? lo) else { throw fail("a repeat count is 0 to 100") }
                return (lo, hi)
            }
        }

        mutating func number() throws -> Int {
            var n = 0
            var digits = 0
            while let c = peek, ("0"..."9").contains(c) {
                n = n * 10 + Int(c.value - 48)
                digits += 1
                index += 1
                if digits > 3 { throw fail("a repeat count is 0 to 100") }
            }
            guard digits > 0 else { throw fail("expected a number") }
            return n
        }

        mutating func parseAtom() throws -> Node {
            let c = scalars[index]
            index += 1
            switch c {
            case ".": return .any
            case "^": return .start
            case "$": return .end
            case "*", "+", "?", "{": throw SyntaxError(description: "nothing to repeat at \(index)")
            case "(":
                if peek == "?" {
                    guard index + 1 < scalars.count, scalars[index + 1] == ":" else { throw fail("look-around and other (? groups are not supported") }
                    index += 2
                }
                let inner = try parseAlternation()
                guard peek == ")" else { throw fail("missing ')'") }
                index += 1
                return inner
            case "[": return .set(try parseClass())
            case "\\": return try parseEscape(inClass: false)
            default: return .char(folded(c))
            }
        }

        mutating func parseEscape(inClass: Bool) throws -> Node {
            guard let e = peek else { throw fail("trailing '\\'") }
            index += 1
            switch e {
            case "d": return .set(CharSet(ranges: Self.digit, negated: false))
            case "D": return .set(CharSet(ranges: Self.digit, negated: true))
            case "w": return .set(CharSet(ranges: Self.word, negated: false))
            case "W": return .set(CharSet(ranges: Self.word, negated: true))
            case "s": return .set(CharSet(ranges: Self.space, negated: false))
            case "S": return .set(CharSet(ranges: Self.space, negated: true))
            case "n": return .char("\n")
            case "t": return .char("\t")
            default:
                if ("0"..."9").contains(e) { throw SyntaxError(description: "back-references are not supported at \(index - 1)") }
                guard "\\.*+?()[]{}|^$/-".unicodeScalars.contains(e) else { throw SyntaxError(description: "unknown escape \\\(e) at \(index - 1)") }
                return .char(e)
            }
        }

        static let digit: [ClosedRange<UInt32>] = [48...57]
        static let word: [ClosedRange<UInt32>] = [48...57, 65...90, 95...95, 97...122]
        static let space: [ClosedRange<UInt32>] = [9...13, 32...32, 0xA0...0xA0, 0x3000...0x3000]

        mutating func parseClass() throws -> CharSet {
            var set = CharSet(ranges: [], negated: false)
            if peek == "^" {
                set.negated = true
                index += 1
            }
            var first = true
            while let c = peek, c != "]" || first {
                first = false
                index += 1
                var lo: UInt32
                if c == "\\" {
                    switch try parseEscape(inClass: true) {
                    case .set(let inner) where !inner.negated:
                        set.ranges += inner.ranges
                        continue
                    case .char(let s): lo = s.value
                    default: throw fail("a negated class escape inside [] is not supported")
                    }
                } else {
                    lo = folded(c).value
                }
                if peek == "-", index + 1 < scalars.count, scalars[index + 1] != "]" {
                    index += 1
                    var hiScalar = scalars[index]
                    index += 1
                    if hiScalar == "\\" {
                        guard case .char(let s) = try parseEscape(inClass: true) else { throw fail("bad range end") }
                        hiScalar = s
                    }
                    hiScalar = folded(hiScalar)
                    guard hiScalar.value >= lo else { throw fail("range out of order") }
                    set.ranges.append(lo...hiScalar.value)
                } else {
                    set.ranges.append(lo...lo)
                }
            }
            guard peek == "]" else { throw fail("missing ']'") }
            index += 1
            return set
        }
    }

    // MARK: - Compiling

    static func emit(_ node: Node, into code: inout [Inst]) throws {
        guard code.count < maxProgram else { throw SyntaxError(description: "the pattern is too large (repeat counts multiply it)") }
        switch node {
        case .empty: break
        case .char(let c): code.append(.char(c))
        case .any: code.append(.any)
        case .set(let s): code.append(.set(s))
        case .start: code.append(.start)
        case .end: code.append(.end)
        case .concat(let items): for item in items { try emit(item, into: &code) }
        case .alternate(let branches):
            var jumps = [Int]()
            for (n, branch) in branches.enumerated() {
                if n < branches.count - 1 {
                    let split = code.count
                    code.append(.split(split + 1, -1))
                    try emit(branch, into: &code)
                    jumps.append(code.count)
                    code.append(.jump(-1))
                    code[split] = .split(split + 1, code.count)
                } else {
                    try emit(branch, into: &code)
                }
            }
            for j in jumps { code[j] = .jump(code.count) }
        case .repeated(let inner, let lo, let hi):
            for _ in 0..<lo { try emit(inner, into: &code) }
            if let hi {
                // Each optional copy: split(take, skip to the end).
                var splits = [Int]()
                for _ in lo..<hi {
                    splits.append(code.count)
                    code.append(.split(code.count + 1, -1))
                    try emit(inner, into: &code)
                }
                for s in splits { code[s] = .split(s + 1, code.count) }
            } else {
                let loop = code.count
                code.append(.split(loop + 1, -1))
                try emit(inner, into: &code)
                code.append(.jump(loop))
                code[loop] = .split(loop + 1, code.count)
            }
        }
        guard code.count <= maxProgram else { throw SyntaxError(description: "the pattern is too large (repeat counts multiply it)") }
    }
}
