import GatewayCore
import HTTPAPI
import Hummingbird
import Ingress
import Store

/// A person's rights over their data (PIPL, GDPR): `GET /api/v1/customers/{id}/export` (everything
/// held about them, as JSON) and `DELETE /api/v1/customers/{id}` (erasure; 202 with the erasure,
/// whose stream purge goes on in the background: `GET /api/v1/erasures/{id}`). Both are audited.
struct PrivacyRoutes {
    let customers: CustomerStore
    let erasure: CustomerErasure
    let crmAdapters: [String]
    let clock: @Sendable () -> Int64

    func register<Context: RequestContext>(on group: DeclaredRoutes<Context>) {
        group.get("/customers/:id/export", .customersExport) { _, context in try await storage { try await export(context.parameters.require("id")) } }
        group.delete("/customers/:id", .customersErase) { _, context in try await storage { try await erase(context.parameters.require("id")) } }
        group.get("/erasures/:id", .customersErase) { _, context in
            try await storage {
                guard let job = try await erasure.job(context.parameters.require("id")) else { throw APIError.notFound("erasure") }
                return try JSONResponse.encoded(ErasureView(job))
            }
        }
    }

    func export(_ id: String) async throws -> Response {
        guard
            let f = try await CustomerFootprint.read(id, redis: customers.redis, suppression: customers.suppression, crmAdapters: crmAdapters),
            case .found(let live) = try await customers.customer(id: f.survivor, nowMs: clock())
        else { throw APIError.notFound("customer") }
        if f.survivor != id { AuditNote.target(f.survivor) }
        return try JSONResponse.encoded(ExportView(f, live: CustomerView(live, attributes: customers.attributes), at: clock()))
    }

    func erase(_ id: String) async throws -> Response {
        let actor = Principal.current?.actor ?? "unknown"
        guard let job = try await erasure.erase(id, by: actor) else { throw APIError.notFound("customer") }
        AuditNote.target(job.customer, "erasure:\(job.id)")
        var response = try JSONResponse.encoded(ErasureView(job), status: .accepted)
        response.headers[.location] = "/api/v1/erasures/\(job.id)"
        return response
    }
}

/// An erasure as the API shows it.
struct ErasureView: Encodable {
    let id: String
    let customer: String
    /// `erasing`, `purging` (stream entries and import lines are being removed), `done`.
    let state: String
    let requestedBy: String
    let requestedAt: String
    let keysDeleted: Int
    let suppressedAddresses: Int
    /// CRM adapters asked to delete their record (see `GET /api/v1/crm` for their queues).
    let crm: [String]
    let streamEntriesRemoved: Int
    let importLinesRemoved: Int
    let finishedAt: String?

    init(_ j: CustomerErasure.Job) {
        id = j.id
        customer = j.customer
        state = j.state
        requestedBy = j.requestedBy
        requestedAt = JSONResponse.isoTime(j.requestedAt)
        keysDeleted = j.keysDeleted
        suppressedAddresses = j.suppressed
        crm = j.crm
        streamEntriesRemoved = j.streamEntriesRemoved
        importLinesRemoved = j.importLinesRemoved
        finishedAt = j.finishedAt.map(JSONResponse.isoTime)
    }
}

/// Everything held about a person: the customer as the API shows it, then every stored record as
/// stored (the live one and those merged into it), their journeys, messages, merge candidates,
/// WeChat sessions, CRM sync state and opt-outs.
struct ExportView: Encodable {
    struct Record: Encodable {
        let id: String
        let fields: [String: String]
        let identities: [String]
        let tags: [String]
        /// Newest first.
        let timeline: [JSONValue]
        let campaigns: [String: String]
    }

    struct Stored: Encodable {
        let id: String
        let fields: [String: String]
    }

    struct Enrolment: Encodable {
        let journey: String
        let customer: String
        let fields: [String: String]
    }

    struct Session: Encodable {
        let account: String
        let openid: String
        let state: String?
        /// Oldest first.
        let messages: [JSONValue]
    }

    struct CRMState: Encodable {
        let adapter: String
        let customer: String
        let fields: [String: String]
    }

    struct OptOut: Encodable {
        let channel: String
        let address: String
        let state: String
    }

    let exportedAt: String
    let customer: CustomerView
    let records: [Record]
    let journeys: [Enrolment]
    let messages: [Stored]
    let mergeCandidates: [Stored]
    let sessions: [Session]
    let crm: [CRMState]
    let optOuts: [OptOut]

    init(_ f: CustomerFootprint, live: CustomerView, at: Int64) {
        exportedAt = JSONResponse.isoTime(at)
        customer = live
        records = f.records.map {
            Record(id: $0.id, fields: $0.hash, identities: $0.identities, tags: $0.tags, timeline: $0.timeline.map(JSONValue.stored), campaigns: $0.campaigns)
        }
        journeys = f.journeys.map { Enrolment(journey: $0.journey, customer: $0.customer, fields: $0.fields) }
        messages = f.messages.map { Stored(id: $0.id, fields: $0.fields) }
        mergeCandidates = f.mergeCandidates.map { Stored(id: $0.id, fields: $0.fields) }
        sessions = f.sessions.map { Session(account: $0.account, openid: $0.openid, state: $0.state, messages: $0.messages.map(JSONValue.stored)) }
        crm = f.crm.map { CRMState(adapter: $0.adapter, customer: $0.customer, fields: $0.fields.filter { $0.key != "lease" }) }
        optOuts = f.optOuts.map { OptOut(channel: $0.channel, address: $0.address, state: $0.value) }
    }
}
