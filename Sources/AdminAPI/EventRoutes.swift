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

    func register<Context: RequestContext>(on group: DeclaredRoutes<Context>) {
        group.post("/events", .eventsWrite) { request, _ in
            try await storage {
                let buffer: ByteBuffer
                do { buffer = try await request.body.collect(upTo: 4 << 20) } catch is NIOTooManyBytesError {
                    throw APIError(.contentTooLarge, "body_too_large", "body exceeds 4 MiB")
                }
                let events = try EventInput.parse(Array(buffer: buffer), nowMs: clock())
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
