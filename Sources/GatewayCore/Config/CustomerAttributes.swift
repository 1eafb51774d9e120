import Foundation

/// The typed profile attributes customers may carry (`customers.attributes` in gateway.yaml). Values
/// are checked against their type and stored as canonical text in `profile.<name>`:
/// numbers without a trailing `.0`, booleans `true`/`false`, datetimes `YYYY-MM-DDTHH:MM:SS` with `Z`
/// or the offset given. Numbers, datetimes, booleans, enums and strings marked `indexed` are indexed
/// so audiences can filter them (`profile.spend>=1000`, `profile.city=Shanghai`).
public struct CustomerAttributes: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case string
        case number
        case boolean
        case datetime
        /// An IANA time zone name (`Asia/Shanghai`), used for quiet hours.
        case timezone
        case enumeration([String])

        public var name: String {
            switch self {
            case .string: "string"
            case .number: "number"
            case .boolean: "boolean"
            case .datetime: "datetime"
            case .timezone: "timezone"
            case .enumeration(let values): "enum:[\(values.joined(separator: ", "))]"
            }
        }
    }

    public struct Attribute: Sendable, Equatable {
        public var name: String
        public var kind: Kind
        public var indexed: Bool

        public init(name: String, kind: Kind, indexed: Bool? = nil) {
            self.name = name
            self.kind = kind
            switch kind {
            case .string, .timezone: self.indexed = indexed ?? false
            default: self.indexed = indexed ?? true
            }
        }

        /// How the index orders it: `n` by number, `d` by time, `s` by text (ASCII case folded).
        public var indexKind: String? {
            guard indexed else { return nil }
            switch kind {
            case .number: return "n"
            case .datetime: return "d"
            default: return "s"
            }
        }
    }

    public var attributes: [String: Attribute]
    /// Date-only values (`2026-12-10`) mean midnight in this zone.
    public var defaultTimeZone: String

    public init(_ attributes: [Attribute] = Self.defaults, defaultTimeZone: String = "Asia/Shanghai") {
        self.attributes = Dictionary(attributes.map { ($0.name, $0) }, uniquingKeysWith: { $1 })
        self.defaultTimeZone = defaultTimeZone
    }

    /// The set shipped in gateway.yaml (and used when the config names none).
    public static let defaults: [Attribute] = [
        Attribute(name: "nickname", kind: .string), Attribute(name: "name", kind: .string),
        Attribute(name: "city", kind: .string, indexed: true), Attribute(name: "company", kind: .string, indexed: true),
        Attribute(name: "title", kind: .string), Attribute(name: "spend", kind: .number), Attribute(name: "expo_date", kind: .datetime),
        Attribute(name: "timezone", kind: .timezone), Attribute(name: "language", kind: .string, indexed: true),
    ]

    /// Attribute names: lowercase ASCII letters, digits and `_`, starting with a letter, 1 to 40.
    public static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...40).contains(bytes.count), (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(bytes[0]) else { return false }
        return bytes.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }
    }

    /// Longest text value, in UTF-8 bytes.
    public static let maxTextBytes = 1024

    /// A value the attribute's type refuses, or an attribute nobody declared.
    public struct Invalid: Error, Equatable, CustomStringConvertible {
        public let field: String
        public let reason: String
        public var description: String { "\(field): \(reason)" }
    }

    /// name -> index kind, the data the Lua reindex reads (`Keys.attributeSchema`).
    public var indexSchema: [(String, String)] {
        attributes.values.compactMap { a in a.indexKind.map { (a.name, $0) } }.sorted { $0.0 < $1.0 }
    }

    /// The canonical stored text of a JSON value for an attribute; `.null` is not a value (removal).
    public func canonical(_ name: String, _ value: JSONValue) throws -> String {
        guard let attribute = attributes[name] else {
            throw Invalid(field: "profile.\(name)", reason: "unknown attribute (declare it in customers.attributes)")
        }
        switch (attribute.kind, value) {
        case (.number, .int(let i)): return String(i)
        case (.number, .double(let d)): return try Self.number(d, field: "profile.\(name)")
        case (.boolean, .bool(let b)): return b ? "true" : "false"
        case (_, .string(let s)): return try canonical(name, text: s)
        default: throw Invalid(field: "profile.\(name)", reason: "must be a \(attribute.kind.name)")
        }
    }

    /// The canonical stored text of a textual value (CSV, a string in JSON).
    public func canonical(_ name: String, text: String) throws -> String {
        let field = "profile.\(name)"
        guard let attribute = attributes[name] else { throw Invalid(field: field, reason: "unknown attribute (declare it in customers.attributes)") }
        let t = text.trimmingCharacters(in: .whitespaces)
        switch attribute.kind {
        case .string:
            guard !t.isEmpty, t.utf8.count <= Self.maxTextBytes else { throw Invalid(field: field, reason: "must be 1 to \(Self.maxTextBytes) bytes") }
            guard !t.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw Invalid(field: field, reason: "must not contain control characters")
            }
            return t
        case .number:
            guard let d = Double(t), !t.isEmpty, t.allSatisfy({ $0.isASCII }) else { throw Invalid(field: field, reason: "must be a number") }
            if let i = Int64(t) { return String(i) }
            return try Self.number(d, field: field)
        case .boolean:
            switch t.lowercased() {
            case "true", "yes", "1": return "true"
            case "false", "no", "0": return "false"
            default: throw Invalid(field: field, reason: "must be true or false")
            }
        case .datetime:
            guard let canonical = Self.datetime(t, defaultZone: defaultTimeZone) else {
                throw Invalid(field: field, reason: "must be a date (2026-12-10) or an ISO 8601 time with a zone (2026-12-10T09:00:00+08:00)")
            }
            return canonical
        case .timezone:
            guard Self.isTimeZone(t) else { throw Invalid(field: field, reason: "must be an IANA time zone such as Asia/Shanghai") }
            return t
        case .enumeration(let values):
            guard values.contains(t) else { throw Invalid(field: field, reason: "must be one of \(values.joined(separator: ", "))") }
            return t
        }
    }

    /// An IANA time zone name Foundation knows.
    public static func isTimeZone(_ name: String) -> Bool { !name.isEmpty && TimeZone(identifier: name) != nil }

    static func number(_ d: Double, field: String) throws -> String {
        guard d.isFinite, abs(d) < 1e15 else { throw Invalid(field: field, reason: "must be a finite number below 1e15") }
        if d == d.rounded(), abs(d) < 9e15 { return String(Int64(d)) }
        return String(d)
    }

    /// `YYYY-MM-DDTHH:MM[:SS[.fff]](Z|±HH:MM)` -> the same instant as `YYYY-MM-DDTHH:MM:SS` plus the
    /// zone as given; `YYYY-MM-DD` -> midnight in `defaultZone`. Nil when it is neither.
    public static func datetime(_ text: String, defaultZone: String) -> String? {
        guard let ms = datetimeMillis(text, defaultZone: defaultZone) else { return nil }
        let chars = Array(text)
        if chars.count == 10 {
            let zone = TimeZone(identifier: defaultZone) ?? TimeZone(secondsFromGMT: 0)!
            let offset = zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(ms) / 1000))
            return text + "T00:00:00" + Self.offsetText(offset)
        }
        let zonePart = text.hasSuffix("Z") ? "Z" : String(text.suffix(6))
        let seconds = chars.count > 16 && chars[16] == ":" ? String(chars[17..<19]) : "00"
        return String(chars[0..<16]) + ":" + seconds + zonePart
    }

    static func offsetText(_ seconds: Int) -> String {
        if seconds == 0 { return "Z" }
        let a = abs(seconds) / 60
        return (seconds < 0 ? "-" : "+") + String(format: "%02d:%02d", a / 60, a % 60)
    }

    /// Milliseconds since the epoch of a datetime value (see `datetime`), or nil.
    public static func datetimeMillis(_ text: String, defaultZone: String) -> Int64? {
        let c = Array(text.utf8)
        func digits(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= c.count else { return nil }
            var n = 0
            for b in c[from..<(from + count)] {
                guard b >= 0x30 && b <= 0x39 else { return nil }
                n = n * 10 + Int(b - 0x30)
            }
            return n
        }
        guard c.count >= 10, c[4] == 0x2D, c[7] == 0x2D, let y = digits(0, 4), let mo = digits(5, 2), let d = digits(8, 2), (1...12).contains(mo),
            (1...Self.daysIn(month: mo, year: y)).contains(d)
        else { return nil }
        let day = Int64(Self.daysFromCivil(y, mo, d))
        if c.count == 10 {
            guard let zone = TimeZone(identifier: defaultZone) else { return nil }
            let utcMidnight = day * 86_400_000
            let offset = Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(utcMidnight) / 1000))) * 1000
            return utcMidnight - offset
        }
        guard c.count >= 17, c[10] == 0x54, c[13] == 0x3A, let h = digits(11, 2), let mi = digits(14, 2), h < 24, mi < 60 else { return nil }
        var i = 16
        var s = 0
        if i < c.count, c[i] == 0x3A {
            guard let sec = digits(17, 2), sec < 60 else { return nil }
            s = sec
            i = 19
            if i < c.count, c[i] == 0x2E {
                i += 1
                let start = i
                while i < c.count, c[i] >= 0x30 && c[i] <= 0x39 { i += 1 }
                guard i > start, i - start <= 9 else { return nil }
            }
        }
        var offset = 0
        if i == c.count - 1, c[i] == 0x5A {
            offset = 0
        } else if i == c.count - 6, c[i] == 0x2B || c[i] == 0x2D, c[i + 3] == 0x3A, let oh = digits(i + 1, 2), let om = digits(i + 4, 2), oh < 24, om < 60 {
            offset = (oh * 60 + om) * 60 * (c[i] == 0x2D ? -1 : 1)
        } else {
            return nil
        }
        return (day * 86_400 + Int64(h * 3600 + mi * 60 + s) - Int64(offset)) * 1000
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 (Howard Hinnant's days_from_civil; the Lua reindex has the same).
    static func daysFromCivil(_ year: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
