/// One checked row of a customer import (CSV or JSONL), ready to store: identities normalised,
/// profile values canonical (`CustomerAttributes`), tags and consent valid.
public struct CustomerImportRow: Sendable, Equatable {
    public var line: Int
    public var identities: [Identity]
    public var tags: [String]
    /// `profile.<name>` -> canonical value; empty cells are left out (an import never removes).
    public var profile: [(String, String)]
    /// channel (sms, email) -> granted | revoked.
    public var consent: [(String, String)]

    public static func == (a: Self, b: Self) -> Bool {
        a.line == b.line && a.identities == b.identities && a.tags == b.tags && a.profile.elementsEqual(b.profile, by: ==)
            && a.consent.elementsEqual(b.consent, by: ==)
    }

    /// A row refused, with why; the rest of the import goes on.
    public struct Rejected: Error, Sendable, Equatable {
        public let line: Int
        public let reason: String

        public init(line: Int, reason: String) {
            self.line = line
            self.reason = reason
        }
    }

    /// The columns an import may have: `phone`, `email`, `openid` (with `account`), `unionid`,
    /// `external_id`, `profile.<attribute>`, `tags` (`;`-separated), `consent.sms`, `consent.email`.
    public struct Columns: Sendable {
        public let names: [String]

        /// Checks a header (CSV) or a JSONL object's keys; throws `Rejected` at `line` naming the first
        /// column nobody knows.
        public init(_ names: [String], attributes: CustomerAttributes, line: Int) throws {
            var seen = Set<String>()
            for name in names {
                guard seen.insert(name).inserted else { throw Rejected(line: line, reason: "column \(name) appears twice") }
                guard Self.isKnown(name, attributes: attributes) else {
                    throw Rejected(
                        line: line,
                        reason: "unknown column \(name) (use phone, email, openid, account, unionid, external_id, tags, consent.sms, consent.email or profile.<attribute>)")
                }
            }
            guard names.contains(where: { Self.identityColumns.contains($0) }) else {
                throw Rejected(line: line, reason: "no identity column: give at least one of phone, email, openid (with account), unionid, external_id")
            }
            self.names = names
        }

        static let identityColumns: Set<String> = ["phone", "email", "openid", "unionid", "external_id"]

        static func isKnown(_ name: String, attributes: CustomerAttributes) -> Bool {
            if identityColumns.contains(name) || ["account", "tags", "consent.sms", "consent.email"].contains(name) { return true }
            return name.hasPrefix("profile.") && attributes.attributes[String(name.dropFirst("profile.".count))] != nil
        }
    }

    /// A row built in code, its values already checked.
    public init(line: Int, identities: [Identity], tags: [String], profile: [(String, String)], consent: [(String, String)]) {
        self.line = line
        self.identities = identities
        self.tags = tags
        self.profile = profile
        self.consent = consent
    }

    /// Builds a row from its cells (name -> text; an empty text is no value). `accounts` are the
    /// configured account ids an openid may belong to.
    public init(line: Int, cells: [(String, String)], attributes: CustomerAttributes, accounts: Set<String>) throws {
        self.line = line
        identities = []
        tags = []
        profile = []
        consent = []
        let account = cells.first { $0.0 == "account" }?.1.trimmingCharacters(in: .whitespaces) ?? ""
        for (name, raw) in cells {
            let value = raw.trimmingCharacters(in: .whitespaces)
            guard !value.isEmpty else { continue }
            do {
                switch name {
                case "account": break
                case "phone": identities.append(try IdentityInput.make(type: "phone", value: value, account: nil))
                case "email": identities.append(try IdentityInput.make(type: "email", value: value, account: nil))
                case "unionid": identities.append(try IdentityInput.make(type: "unionid", value: value, account: nil))
                case "external_id": identities.append(try IdentityInput.make(type: "external", value: value, account: nil))
                case "openid":
                    guard accounts.contains(account) else {
                        throw Rejected(line: line, reason: account.isEmpty ? "openid needs an account column" : "account \(account) is not a configured account")
                    }
                    identities.append(try IdentityInput.make(type: "openid", value: value, account: account))
                case "tags":
                    for t in value.split(separator: ";").map({ $0.trimmingCharacters(in: .whitespaces) }) where !t.isEmpty {
                        guard TagName.isValid(t) else { throw Rejected(line: line, reason: "tags: \(t): \(TagName.rule)") }
                        if !tags.contains(t) { tags.append(t) }
                    }
                case "consent.sms", "consent.email":
                    let state = value.lowercased()
                    guard state == "granted" || state == "revoked" else { throw Rejected(line: line, reason: "\(name) must be granted or revoked") }
                    consent.append((String(name.dropFirst("consent.".count)), state))
                default:
                    let attribute = String(name.dropFirst("profile.".count))
                    profile.append((name, try attributes.canonical(attribute, text: value)))
                }
            } catch let e as IdentityInput.Invalid {
                throw Rejected(line: line, reason: "\(name): \(e.message)")
            } catch let e as CustomerAttributes.Invalid {
                throw Rejected(line: line, reason: e.description)
            }
        }
        guard !identities.isEmpty else { throw Rejected(line: line, reason: "no identity: the row needs a phone, email, openid, unionid or external_id") }
        guard tags.count <= 100 else { throw Rejected(line: line, reason: "tags: at most 100 per row") }
    }

    /// The row as stored for the import function: `[line, [identities], [tags], [field, value, ...],
    /// [channel, state, ...]]`.
    public var json: JSONValue {
        .array([
            .int(Int64(line)), .array(identities.map { .string($0.storageForm) }), .array(tags.map(JSONValue.string)),
            .array(profile.flatMap { [.string($0.0), .string($0.1)] }), .array(consent.flatMap { [.string($0.0), .string($0.1)] }),
        ])
    }
}
