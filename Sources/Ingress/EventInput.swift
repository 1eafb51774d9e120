import GatewayCore
import HTTPAPI
import Store

/// Interactions sent by other systems, as `POST /api/v1/events` and the lead webhooks take them:
/// `{"type": "web.form_submit", "identities": [{"type": "email", "value": ...}] | "customer": id,
/// "at"?: ISO 8601 or ms, "data"?: {scalars}, "id"?: client event id}`, checked whole before anything
/// is stored (a 400 naming the field).
public enum EventInput {
    public static let maxEvents = 1000

    /// Types WeChat's webhooks and the gateway itself use are not for the API.
    public static let reservedPrefixes = ["event.", "message.", "customer.", "score.", "crm.", "lead.", "identity."]

    public static func parse(_ bytes: [UInt8], nowMs: Int64) throws -> [EventStore.Event] {
        guard case .array(let list)? = JSONValue.parse(bytes)?.lookup("events") else {
            throw APIError.badRequest("body must be {\"events\": [...]}", code: "invalid_body")
        }
        guard (1...maxEvents).contains(list.count) else { throw APIError.badRequest("events: 1 to \(maxEvents) per request", code: "invalid_body") }
        return try list.enumerated().map { i, e in try event(e, path: "events[\(i)]", nowMs: nowMs) }
    }

    /// One event of a request (`path` names it in errors). `forcedType`: the type the caller gives
    /// (a pushed lead is `lead.submitted`, whatever it says); otherwise its own `type`, checked.
    public static func event(_ e: JSONValue, path: String, nowMs: Int64, forcedType: String? = nil, code: String = "invalid_event") throws -> EventStore.Event {
        func bad(_ what: String) -> APIError { APIError.badRequest("\(path).\(what)", code: code) }
        guard case .object = e else { throw bad("must be an object") }
        let type: String
        if let forcedType {
            type = forcedType
        } else {
            guard let given = e.lookup("type")?.scalarText, given.count <= 64, given.split(separator: ".").count >= 2,
                given.utf8.allSatisfy({ IdentityInput.isTokenByte($0) || $0 == UInt8(ascii: ".") }),
                !reservedPrefixes.contains(where: { given.hasPrefix($0) })
            else { throw bad("type: a dotted name such as web.form_submit (not event.*, message.*, customer.*, identity.*, crm.*, lead.*, score.*: the gateway's own)") }
            type = given
        }
        var at = nowMs
        switch e.lookup("at") {
        case nil, .null?: break
        case .int(let ms)?: at = ms
        case .string(let iso)?:
            guard let ms = CampaignDefinition.milliseconds(iso) else { throw bad("at: ISO 8601 with an offset, or ms since the epoch") }
            at = ms
        default: throw bad("at: ISO 8601 with an offset, or ms since the epoch")
        }
        guard at <= nowMs + 300_000 else { throw bad("at: in the future") }
        var data = JSONValue.object([:])
        if let d = e.lookup("data") {
            guard case .object(let o) = d, o.count <= 50, o.values.allSatisfy({ $0.scalarText != nil }) else {
                throw bad("data: an object of at most 50 strings, numbers or booleans")
            }
            data = d
        }
        var identities = [Identity]()
        var verified = Set<Identity>()
        var raw = [JSONValue]()
        if case .array(let a)? = e.lookup("identities") { raw = a } else if let one = e.lookup("identity") { raw = [one] }
        guard raw.count <= 10 else { throw bad("identities: at most 10") }
        for (k, r) in raw.enumerated() {
            guard let t = r.lookup("type")?.scalarText, let v = r.lookup("value")?.scalarText, t != "crm" else {
                throw bad("identities[\(k)]: {type: phone|email|unionid|openid|wecom|douyin, value, account?}")
            }
            do {
                let identity = try IdentityInput.make(type: t, value: v, account: r.lookup("account")?.scalarText)
                identities.append(identity)
                switch r.lookup("verified") {
                case nil, .bool(false)?: break
                case .bool(true)?: verified.insert(identity)
                default: throw bad("identities[\(k)].verified: true or false")
                }
            } catch let x as IdentityInput.Invalid {
                throw bad("identities[\(k)]: \(x.message)")
            }
        }
        let customer = e.lookup("customer")?.scalarText
        if let customer, !ULID.isValid(customer) { throw bad("customer: not a customer id") }
        guard customer != nil || !identities.isEmpty else { throw bad("give identities (or identity) or customer") }
        let id = e.lookup("id")?.scalarText
        if let id, id.isEmpty || id.count > 128 { throw bad("id: 1 to 128 characters") }
        var event = EventStore.Event(id: id, customer: customer, identities: identities, type: type, atMs: at, data: data)
        event.verified = verified
        return event
    }

}
