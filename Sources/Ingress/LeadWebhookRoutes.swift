import CRMSync
import Foundation
import GatewayCore
import HTTPAPI
import HTTPTypes
import Hummingbird
import Metrics
import NIOCore
import RedisClient
import Store

/// `POST /webhooks/leads/{source}`: form leads pushed by a landing page, a form tool or an ad platform's
/// lead form, signed with the source's secret (`SCRM-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret,
/// "<t>.<body>")>`, within `leads.windowSeconds`). Body `{"leads": [{"id", "identities": [{"type",
/// "value"}], "at"?, "data"?}]}`, 1 to 100 leads, each with its own id.
/// - The signature is checked before the body is read (403, nothing stored); an unknown or switched-off
///   source is 404; a body that does not parse, or any bad lead, is 400 naming it, and nothing is stored.
/// - Each lead becomes a `lead.submitted` interaction (`data.source` = the source) on the customer its
///   identities find or create, recorded once per lead id (a resend is a duplicate), scored by the
///   rules and synced to the CRM like any other.
/// - The same signed request again is a replay (403); a storage outage is 503, so the sender retries.
public struct LeadWebhookRoutes: Sendable {
    public static let type = "lead.submitted"
    public static let maxLeads = 100

    let sources: [String: GatewayConfig.Leads.Source]
    let events: EventStore
    let replays: ReplayGuard
    let settings: GatewayConfig.Leads
    let clock: @Sendable () -> Int64

    public init(config: GatewayConfig, redis: RedisPool, clock: @escaping @Sendable () -> Int64) {
        sources = Dictionary(uniqueKeysWithValues: config.leads.sources.map { ($0.id, $0) })
        events = EventStore(redis: redis, config: config)
        replays = ReplayGuard(redis: redis, ttlSeconds: 2 * config.leads.windowSeconds)
        settings = config.leads
        self.clock = clock
    }

    /// What a push recorded.
    struct Recorded: Encodable {
        let recorded: Int
        let duplicates: Int
    }

    public func register<Context: RequestContext>(on router: DeclaredRoutes<Context>) {
        router.post("/webhooks/leads/:source", .public) { request, context -> Response in
            try await rejecting {
                let name = try context.parameters.require("source")
                guard let source = sources[name] else { throw APIError.notFound("lead source") }
                let body: ByteBuffer
                do { body = try await request.body.collect(upTo: settings.maxBodyBytes) } catch is NIOTooManyBytesError {
                    throw APIError(.contentTooLarge, "body_too_large", "body exceeds \(settings.maxBodyBytes) bytes")
                }
                let bytes = Array(buffer: body)
                let header = HTTPField.Name(CRMSignature.header).flatMap { request.headers[$0] }
                do {
                    try CRMSignature.verify(
                        header: header, secret: source.secret, body: bytes, nowSeconds: clock() / 1000, windowSeconds: Int64(settings.windowSeconds))
                } catch {
                    Counter(label: "scrm_leads_total", dimensions: [("source", name), ("result", "bad_signature")]).increment()
                    throw APIError(.forbidden, "bad_signature", "SCRM-Signature missing, stale or not matching")
                }
                let leads = try parse(bytes, source: name)
                let outcomes: [EventStore.Outcome]
                do {
                    guard let done = try await replays.once(scope: "leads:\(name)", signature: header ?? "", {
                        try await events.record(leads, mayMerge: false, actor: "lead:\(name)", nowMs: clock())
                    }) else { throw APIError(.forbidden, "replayed", "this signed request was already taken") }
                    outcomes = done
                } catch is RedisError {
                    throw APIError.unavailable
                }
                let duplicates = outcomes.filter { if case .duplicate = $0 { return true } else { return false } }.count
                Counter(label: "scrm_leads_total", dimensions: [("source", name), ("result", "recorded")]).increment(by: outcomes.count - duplicates)
                Counter(label: "scrm_leads_total", dimensions: [("source", name), ("result", "duplicate")]).increment(by: duplicates)
                return try JSONResponse.encoded(Recorded(recorded: outcomes.count - duplicates, duplicates: duplicates))
            }
        }
    }

    /// The leads as events: the type and `data.source` ours, the id namespaced by source (two sources'
    /// lead 42 are two leads), no customer ids (a lead names people by their identities).
    func parse(_ bytes: [UInt8], source: String) throws -> [EventStore.Event] {
        guard case .array(let list)? = JSONValue.parse(bytes)?.lookup("leads") else {
            throw APIError.badRequest("body must be {\"leads\": [...]}", code: "invalid_body")
        }
        guard (1...Self.maxLeads).contains(list.count) else { throw APIError.badRequest("leads: 1 to \(Self.maxLeads) per request", code: "invalid_body") }
        let now = clock()
        return try list.enumerated().map { i, lead in
            let path = "leads[\(i)]"
            guard case .object(let fields) = lead else { throw APIError.badRequest("\(path): must be an object", code: "invalid_lead") }
            guard fields["customer"] == nil else { throw APIError.badRequest("\(path).customer: a lead names people by identities", code: "invalid_lead") }
            guard let id = lead.lookup("id")?.scalarText, !id.isEmpty, id.count <= 100 else {
                throw APIError.badRequest("\(path).id: 1 to 100 characters (each lead is recorded once per id)", code: "invalid_lead")
            }
            var event = try EventInput.event(lead, path: path, nowMs: now, forcedType: Self.type, code: "invalid_lead")
            event.id = "lead:\(source):\(id)"
            if case .object(var data) = event.data {
                data["source"] = .string(source)
                event.data = .object(data)
            }
            return event
        }
    }
}
