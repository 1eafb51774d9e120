/// The columns an audience export may have, and how one customer becomes a CSV row.
public enum CustomerExportFields {
    /// id, phone, email, unionid, external_id, openid (account:openid, `;`-joined), tags (`;`-joined),
    /// score, stage, tier, consent.sms, consent.email, createdAt, lastSeenAt, timezone, and
    /// profile.<attribute> (declared ones).
    public static let builtins: Set<String> = [
        "id", "phone", "email", "unionid", "external_id", "openid", "tags", "score", "stage", "tier", "consent.sms", "consent.email", "createdAt",
        "lastSeenAt", "timezone",
    ]

    /// The columns asked for (comma-separated), or the default set: id, phone, email, tags and
    /// every declared attribute. Throws a reason naming the first unknown column.
    public static func parse(_ text: String?, attributes: CustomerAttributes) throws -> [String] {
        guard let text, !text.isEmpty else {
            return ["id", "phone", "email", "tags"] + attributes.attributes.keys.sorted().map { "profile.\($0)" }
        }
        let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard (1...100).contains(names.count) else { throw CustomerAttributes.Invalid(field: "fields", reason: "give 1 to 100 columns") }
        for n in names where !builtins.contains(n) && !(n.hasPrefix("profile.") && attributes.attributes[String(n.dropFirst(8))] != nil) {
            throw CustomerAttributes.Invalid(field: "fields", reason: "unknown column \(n) (\(builtins.sorted().joined(separator: ", ")), or profile.<attribute>)")
        }
        return names
    }

    /// One customer's row: hash fields, identities (storage forms) and tags.
    public static func row(_ fields: [String], id: String, hash: [String: String], identities: [String], tags: [String]) -> [String] {
        func ids(_ kind: String) -> [String] { identities.filter { $0.hasPrefix(kind + ":") }.map { String($0.dropFirst(kind.count + 1)) }.sorted() }
        return fields.map { f in
            switch f {
            case "id": id
            case "phone", "email", "unionid": ids(f).joined(separator: ";")
            case "external_id": ids("external").joined(separator: ";")
            case "openid": ids("openid").joined(separator: ";")
            case "tags": tags.sorted().joined(separator: ";")
            case "consent.sms", "consent.email": ConsentRecord.state(hash[f])
            default: hash[f] ?? ""
            }
        }
    }

    /// RFC 4180: quoted when it holds a comma, quote or line break; a leading = + - @ is prefixed with
    /// ' so a spreadsheet does not run it as a formula.
    public static func csvLine(_ cells: [String]) -> String {
        cells.map { c in
            var v = c
            if let first = v.first, "=+-@".contains(first), !(first == "+" && v.dropFirst().allSatisfy(\.isNumber)) { v = "'" + v }
            guard v.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return v }
            return "\"" + v.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }.joined(separator: ",") + "\r\n"
    }
}
