/// An RFC 4180 CSV reader fed a chunk at a time, so a large upload is parsed as it streams, in
/// bounded memory: quoted fields (with `""` for a quote, and line breaks inside quotes), CRLF or LF
/// line ends, blank lines skipped, a UTF-8 byte-order mark at the start ignored. Each record comes
/// with the line it started on (1-based). A malformed record (a stray quote, a field over
/// `maxFieldBytes`, an unclosed quote at the end) comes back with its error, and reading goes on at
/// the next line.
///
/// ```swift
/// var reader = CSVReader()
/// for chunk in chunks { for record in reader.feed(chunk) { ... } }
/// for record in reader.finish() { ... }
/// ```
public struct CSVReader: Sendable {
    public struct Record: Sendable, Equatable {
        public let line: Int
        public let fields: [String]
        /// Why the record could not be read (its fields are then empty).
        public let error: String?
    }

    /// A field longer than this is refused (a missing closing quote would otherwise swallow the file).
    public static let maxFieldBytes = 65_536
    public static let maxFields = 256

    private var field: [UInt8] = []
    private var fields: [String] = []
    private var inQuotes = false
    /// A quote seen inside a quoted field: the closing quote, or the first of `""`.
    private var quotePending = false
    /// The field started with a quote (text after its closing quote is an error).
    private var fieldQuoted = false
    private var afterCR = false
    private var line = 1
    private var recordLine = 1
    private var sawAnything = false
    /// The record is broken: skip to the next line end.
    private var error: String?
    private var bytesSeen = 0
    private var bomMatched = 0

    public init() {}

    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [Record] {
        var out = [Record]()
        for b in bytes { consume(b, into: &out) }
        return out
    }

    /// The last record, when the input does not end with a line break.
    public mutating func finish() -> [Record] {
        var out = [Record]()
        if inQuotes && !quotePending && error == nil { error = "a quoted field is not closed" }
        if sawAnything || error != nil { endRecord(into: &out) }
        return out
    }

    private static let bom: [UInt8] = [0xEF, 0xBB, 0xBF]

    private mutating func consume(_ b: UInt8, into out: inout [Record]) {
        bytesSeen += 1
        if bytesSeen <= 3, bomMatched == bytesSeen - 1, b == Self.bom[bytesSeen - 1] {
            bomMatched += 1
            return
        }
        if bomMatched > 0 && bomMatched < 3 {
            // The start looked like a byte-order mark but was not one: those bytes are data.
            let partial = Self.bom[0..<bomMatched]
            bomMatched = 3
            for p in partial { consume(p, into: &out) }
        }
        bomMatched = 3
        if afterCR {
            afterCR = false
            if b == 0x0A { return }
        }
        if error != nil {
            if b == 0x0D || b == 0x0A { lineEnd(b, into: &out) }
            return
        }
        if inQuotes {
            if quotePending {
                quotePending = false
                if b == 0x22 {
                    append(b)
                    return
                }
                inQuotes = false  // that quote closed the field: read b as unquoted text
            } else if b == 0x22 {
                quotePending = true
                return
            } else {
                if b == 0x0A { line += 1 }
                append(b)
                return
            }
        }
        switch b {
        case 0x2C:
            endField()
        case 0x0D, 0x0A:
            lineEnd(b, into: &out)
        case 0x22:
            if field.isEmpty && !fieldQuoted {
                inQuotes = true
                fieldQuoted = true
                sawAnything = true
            } else {
                fail("a quote inside an unquoted field (quote the field and double the quote)")
            }
        default:
            if fieldQuoted { fail("text after a closing quote") } else { append(b) }
        }
    }

    private mutating func lineEnd(_ b: UInt8, into out: inout [Record]) {
        if b == 0x0D { afterCR = true }
        line += 1
        if sawAnything || error != nil { endRecord(into: &out) }
        recordLine = line
    }

    private mutating func fail(_ reason: String) {
        error = reason
        inQuotes = false
        quotePending = false
    }

    private mutating func append(_ b: UInt8) {
        sawAnything = true
        guard field.count < Self.maxFieldBytes else { return fail("a field longer than \(Self.maxFieldBytes) bytes") }
        field.append(b)
    }

    private mutating func endField() {
        sawAnything = true
        guard fields.count < Self.maxFields else { return fail("more than \(Self.maxFields) fields") }
        fields.append(String(decoding: field, as: UTF8.self))
        field.removeAll(keepingCapacity: true)
        fieldQuoted = false
    }

    private mutating func endRecord(into out: inout [Record]) {
        if let error {
            out.append(Record(line: recordLine, fields: [], error: error))
        } else {
            fields.append(String(decoding: field, as: UTF8.self))
            out.append(Record(line: recordLine, fields: fields, error: nil))
        }
        field.removeAll(keepingCapacity: true)
        fields.removeAll(keepingCapacity: true)
        fieldQuoted = false
        sawAnything = false
        error = nil
    }
}
