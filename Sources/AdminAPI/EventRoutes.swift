import Foundation
import GatewayCore
import HTTPAPI
import Hummingbird
import Ingress
import NIOCore
import Store

/// `POST /api/v1/events`: up to 1,000 interactions from other channels, each
/// `{"type": "web.form_submit", "identities": [{"type": "email", "value": ...}] | "customer": id,
/// "at"?: ISO 8601 or ms, "data"?: {scalars}, "id"?: client event id}`. Checked whole before anything
/// is stored; then recorded like webhooks (timeline, stream:inbound, scored by the rules).
struct EventRoutes {
    let store: EventStore
    let clock: @Sendable () -> Int64
    static let maxEvents = 1000

    func register<Context: RequestContext>(on group: DeclaredRoutes<Context>) {
        group.post("/events", .eventsWrite) { request, _ in
            try await storage {
                let buffer: ByteBuffer
                do { buffer = try await request.body.collect(upTo: 4 << 20) } catch is NIOTooManyBytesError {
                    throw APIError(.contentTooLarge, "body_too_large", "body exceeds 4 MiB")
                }
                let events = try Self.parse(Array(buffer: buffer), nowMs: clock())
                let principal = Principal.current
                let outcomes = try await store.record(
                    events, mayMerge: principal?.allows(.identitiesMerge) ?? false, actor: principal?.actor ?? "", nowMs: clock())
                var recorded = 0
                var duplicates = 0
                let results = outcomes.map { o -> EventResult in
                    switch o {
                    case .recorded(let c, let created):
                        AuditNote.target(c)
                        recorded += 1
                        return EventResult(customer: c, created: created)
                    case .duplicate(let c):
                        duplicates += 1
                        return EventResult(customer: c, duplicate: true)
                    case .unknownCustomer:
                        return EventResult(error: "unknown_customer")
                    }
                }
                return try JSONResponse.encoded(EventsRecorded(recorded: recorded, duplicates: duplicates, results: results))
            }
        }
    }

    /// Types WeChat's webhooks and the gateway itself use are not for the API.
    static let reservedPrefixes = ["event.", "message.", "customer.", "score.", "crm.", "lead.", "identity."]

    static func parse(_ bytes: [UInt8], nowMs: Int64) throws -> [EventStore.Event] {
        guard case .array(let list)? = JSONValue.parse(bytes)?.lookup("events") else {
            throw APIError.badRequest("body must be {\"events\": [...]}", code: "invalid_body")
        }
        guard (1...maxEvents).contains(list.count) else { throw APIError.badRequest("events: 1 to \(maxEvents) per request", code: "invalid_body") }
        return try list.enumerated().map { i, e in
            func bad(_ what: String) -> APIError { APIError.badRequest("events[\(i)].\(what)", code: "invalid_event") }
            guard case .object = e else { throw bad("must be an object") }
            guard let type = e.lookup("type")?.scalarText, type.count <= 64, type.split(separator: ".").count >= 2,
                type.utf8.allSatisfy({ IdentityInput.isTokenByte($0) || $0 == UInt8(ascii: ".") }),
                !reservedPrefixes.contains(where: { type.hasPrefix($0) })
            else { throw bad("type: a dotted name such as web.form_submit (not event.*, message.*, customer.*, identity.*, crm.*, lead.*, score.*: the gateway's own)") }
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
                    throw bad("identities[\(k)]: {type: phone|email|unionid|openid|wecom, value, account?}")
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

    /// `POST /events`: per event, in order, its customer (created or not), a duplicate, or an error.
    struct EventsRecorded: Encodable {
        let recorded: Int
        let duplicates: Int
        let results: [EventResult]
    }

    struct EventResult: Encodable {
        var customer: String?
        var created: Bool?
        var duplicate: Bool?
        var error: String?
    }
}
