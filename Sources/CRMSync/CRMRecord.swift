import Foundation
import GatewayCore
import Store

/// A customer snapshot read for a CRM: identities, tags, hash fields and recent interactions.
public struct CRMRecord: Sendable {
    public let customer: String
    public let seq: Int64
    public let identities: [String]
    public let tags: [String]
    public let fields: [String: String]
    public let recent: [JSONValue]

    public init(_ s: CRMOutbox.Snapshot) {
        customer = s.customer
        seq = s.seq
        let doc = s.document
        func strings(_ key: String) -> [String] {
            if case .array(let a)? = doc.lookup(key) { return a.compactMap(\.scalarText).sorted() }
            return []  // Lua's cjson writes an empty list as {}
        }
        identities = strings("identities")
        tags = strings("tags")
        var fields = [String: String]()
        if case .object(let o)? = doc.lookup("fields") { for (k, v) in o { if let t = v.scalarText { fields[k] = t } } }
        self.fields = fields
        if case .array(let a)? = doc.lookup("recent") { recent = a } else { recent = [] }
    }

    func identity(_ kind: String) -> String? {
        identities.first { $0.hasPrefix(kind + ":") }.map { String($0.dropFirst(kind.count + 1)) }
    }

    /// The value a mapped property holds; nil = leave the CRM's property alone.
    public func value(_ source: CRMValueSource) -> JSONValue? {
        switch source {
        case .literal(let t): return .string(t)
        case .firstOf(let sources):
            for s in sources {
                if let v = value(s), v != .string("") { return v }
            }
            return nil
        case .field(let f):
            let key = f.hasPrefix("field.") ? String(f.dropFirst(6)) : f
            return fields[key].map(JSONValue.string)
        case .builtin(let b):
            switch b {
            case "id": return .string(customer)
            case "email", "phone", "unionid": return identity(b).map(JSONValue.string)
            case "score":
                let s = Double(fields["score"] ?? "0") ?? 0
                let rounded = (s * 100).rounded() / 100
                return rounded == rounded.rounded() ? .int(Int64(rounded)) : .double(rounded)
            case "stage": return .string(fields["stage"] ?? "new")
            case "tier", "owner": return fields[b].map(JSONValue.string)
            case "tags": return .string(tags.joined(separator: ";"))
            case "qualifiedAt", "firstSeenAt", "lastSeenAt": return fields[b].flatMap { Int64($0) }.map { .string(Self.iso($0)) }
            case "consent.email", "consent.sms":
                return fields[b].map { .string(ConsentRecord.state($0)) }
            case "interactions": return .string(interactionsText)
            default: return nil
            }
        }
    }

    /// One line per recent interaction, newest first: time, type, the detail that scored it.
    var interactionsText: String {
        recent.map { e in
            let at = e.lookup("at").flatMap { v -> Int64? in if case .int(let i) = v { return i } else { return nil } } ?? 0
            let type = e.lookup("type")?.scalarText ?? "?"
            let data = e.lookup("data").map { $0.text } ?? ""
            return "\(Self.iso(at)) \(type) \(data == "{}" ? "" : data)".trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }

    static func iso(_ ms: Int64) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }

    /// The mapped properties, keys sorted.
    public func properties(_ spec: CRMAdapterSpec) -> [(String, JSONValue)] {
        spec.fields.compactMap { p in value(p.source).map { (p.property, $0) } }
    }
}
