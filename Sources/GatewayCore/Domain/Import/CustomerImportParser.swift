/// Turns an import body, a chunk at a time, into checked rows and rejected lines. CSV needs a header
/// row naming the columns; JSONL is one flat JSON object per line with the same names (values
/// strings, numbers or booleans; `tags` may be an array, `profile` an object). A bad header refuses
/// the whole import (`HeaderError`); a bad row is rejected alone, with its line.
public struct CustomerImportParser: Sendable {
    public enum Format: String, Sendable {
        case csv, jsonl
    }

    public struct HeaderError: Error, Sendable, Equatable, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    public typealias Outcome = Result<CustomerImportRow, CustomerImportRow.Rejected>

    public let format: Format
    let attributes: CustomerAttributes
    let accounts: Set<String>
    private var csv = CSVReader()
    private var columns: CustomerImportRow.Columns?
    private var pending: [UInt8] = []
    private var jsonLine = 0
    /// Longest JSONL line.
    public static let maxLineBytes = 65_536

    public init(format: Format, attributes: CustomerAttributes, accounts: Set<String>) {
        self.format = format
        self.attributes = attributes
        self.accounts = accounts
    }

    /// Whether a CSV header has been read (JSONL has none).
    public var hasHeader: Bool { columns != nil }

    public mutating func feed(_ bytes: some Collection<UInt8>) throws -> [Outcome] {
        switch format {
        case .csv: return try csvRecords(csv.feed(bytes))
        case .jsonl: return jsonLines(bytes, final: false)
        }
    }

    public mutating func finish() throws -> [Outcome] {
        switch format {
        case .csv:
            let out = try csvRecords(csv.finish())
            if columns == nil { throw HeaderError(reason: "the CSV is empty: it needs a header row naming the columns") }
            return out
        case .jsonl: return jsonLines([], final: true)
        }
    }

    private mutating func csvRecords(_ records: [CSVReader.Record]) throws -> [Outcome] {
        var out = [Outcome]()
        out.reserveCapacity(records.count)
        for r in records {
            guard let columns else {
                if let error = r.error { throw HeaderError(reason: "header (line \(r.line)): \(error)") }
                do {
                    columns = try CustomerImportRow.Columns(r.fields.map { $0.trimmingCharacters(in: .whitespaces) }, attributes: attributes, line: r.line)
                } catch let e as CustomerImportRow.Rejected { throw HeaderError(reason: "header: \(e.reason)") }
                continue
            }
            if let error = r.error {
                out.append(.failure(.init(line: r.line, reason: error)))
                continue
            }
            guard r.fields.count == columns.names.count else {
                out.append(.failure(.init(line: r.line, reason: "\(r.fields.count) fields where the header has \(columns.names.count)")))
                continue
            }
            out.append(row(line: r.line, cells: Array(zip(columns.names, r.fields))))
        }
        return out
    }

    private func row(line: Int, cells: [(String, String)]) -> Outcome {
        do { return .success(try CustomerImportRow(line: line, cells: cells, attributes: attributes, accounts: accounts)) } catch let e
            as CustomerImportRow.Rejected
        {
            return .failure(e)
        } catch {
            return .failure(.init(line: line, reason: "unreadable row"))
        }
    }

    private mutating func jsonLines(_ bytes: some Collection<UInt8>, final: Bool) -> [Outcome] {
        var out = [Outcome]()
        for b in bytes {
            if b == 0x0A {
                out.append(contentsOf: jsonLine(pending))
                pending.removeAll(keepingCapacity: true)
            } else if pending.count <= Self.maxLineBytes {
                pending.append(b)
            }
        }
        if final, !pending.isEmpty {
            out.append(contentsOf: jsonLine(pending))
            pending.removeAll()
        }
        return out
    }

    private mutating func jsonLine(_ bytes: [UInt8]) -> [Outcome] {
        jsonLine += 1
        let line = jsonLine
        var text = bytes
        if text.last == 0x0D { text.removeLast() }
        if line == 1, text.starts(with: [0xEF, 0xBB, 0xBF]) { text.removeFirst(3) }
        if text.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return [] }
        guard text.count <= Self.maxLineBytes else { return [.failure(.init(line: line, reason: "a line longer than \(Self.maxLineBytes) bytes"))] }
        guard case .object(let object)? = JSONValue.parse(text) else { return [.failure(.init(line: line, reason: "not a JSON object"))] }
        var cells = [(String, String)]()
        for (key, value) in object.sorted(by: { $0.key < $1.key }) {
            switch (key, value) {
            case ("profile", .object(let profile)):
                for (name, v) in profile.sorted(by: { $0.key < $1.key }) {
                    guard let text = Self.scalarText(v) else { return [.failure(.init(line: line, reason: "profile.\(name) must be a string, number or boolean"))] }
                    cells.append(("profile.\(name)", text))
                }
            case ("tags", .array(let tags)):
                let names = tags.compactMap { if case .string(let s) = $0 { s } else { nil } }
                guard names.count == tags.count else { return [.failure(.init(line: line, reason: "tags must be strings"))] }
                cells.append(("tags", names.joined(separator: ";")))
            default:
                guard let text = Self.scalarText(value) else { return [.failure(.init(line: line, reason: "\(key) must be a string, number or boolean"))] }
                cells.append((key, text))
            }
        }
        do { _ = try CustomerImportRow.Columns(cells.map(\.0), attributes: attributes, line: line) } catch let e as CustomerImportRow.Rejected {
            return [.failure(e)]
        } catch {
            return [.failure(.init(line: line, reason: "unreadable row"))]
        }
        return [row(line: line, cells: cells)]
    }

    static func scalarText(_ v: JSONValue) -> String? {
        switch v {
        case .string(let s): s
        case .int(let i): String(i)
        case .double(let d): String(d)
        case .bool(let b): b ? "true" : "false"
        case .null: ""
        default: nil
        }
    }
}
