import Foundation
import GatewayCore
import HTTPAPI
import Hummingbird
import NIOCore
import Store

/// A customer as the admin API shows it (GET, PATCH, identity binding).
struct CustomerView: Encodable {
    struct IdentityView: Encodable {
        let type: String
        let account: String?
        let value: String
    }

    struct ConsentView: Encodable {
        let state: String
        let updatedAt: String
        /// Who recorded it (`api`, `import`, a form name...), when known.
        let source: String?
    }

    let id: String
    let identities: [IdentityView]
    let tags: [String]
    let consent: [String: ConsentView]
    /// Profile attributes (`profile.<name>` fields) as typed values: numbers and booleans as JSON
    /// numbers and booleans for declared attributes, text otherwise.
    let profile: [String: JSONValue]
    let timezone: String?
    let score: Double?
    let stage: String?
    let tier: String?
    /// The salesperson or channel owner (a QR scene's owner, a WeCom member, or the CRM's).
    let owner: String?
    /// Where the customer came from, per account: the QR scene of the current subscription
    /// (`wechat:demo` -> `expo2026-booth-a`), the WeCom contact way's state.
    let sources: [String: String]?
    let createdAt: String
    let firstSeenAt: String
    let lastSeenAt: String

    init(_ c: Customer, attributes: CustomerAttributes) {
        id = c.id
        identities = c.identities.map { IdentityView(type: $0.kind.rawValue, account: $0.account, value: $0.value) }
        tags = c.tags
        consent = Dictionary(
            uniqueKeysWithValues: c.consent.map { key, value in
                (key, ConsentView(state: value.state, updatedAt: Self.time(value.at), source: c.fields["consentSource.\(key)"]))
            })
        var profile = [String: JSONValue]()
        for (field, text) in c.fields where field.hasPrefix("profile.") {
            let name = String(field.dropFirst("profile.".count))
            switch attributes.attributes[name]?.kind {
            case .number?: profile[name] = Int64(text).map(JSONValue.int) ?? Double(text).map(JSONValue.double) ?? .string(text)
            case .boolean?: profile[name] = text == "true" ? .bool(true) : text == "false" ? .bool(false) : .string(text)
            default: profile[name] = .string(text)
            }
        }
        self.profile = profile
        timezone = c.fields["timezone"]
        score = c.fields["score"].flatMap(Double.init)
        stage = c.fields["stage"]
        tier = c.fields["tier"]
        owner = c.fields["owner"]
        let sources = Dictionary(uniqueKeysWithValues: c.fields.filter { $0.key.hasPrefix("source.") }.map { (String($0.key.dropFirst("source.".count)), $0.value) })
        self.sources = sources.isEmpty ? nil : sources
        createdAt = Self.time(c.createdAt)
        firstSeenAt = Self.time(c.firstSeenAt)
        lastSeenAt = Self.time(c.lastSeenAt)
    }

    static func time(_ ms: Int64) -> String { JSONResponse.isoTime(ms) }
}

extension JSONValue {
    /// JSON kept in Redis (timeline entries, session messages) as a value to encode; text that is not
    /// JSON stays a string.
    static func stored(_ raw: String) -> JSONValue { JSONValue.parse(Array(raw.utf8)) ?? .string(raw) }
}
