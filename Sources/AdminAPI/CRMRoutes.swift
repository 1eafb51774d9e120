import CRMSync
import Foundation
import GatewayCore
import HTTPAPI
import Hummingbird
import Ingress
import RedisClient
import Store

/// CRM sync status and repair:
/// - `GET /crm`: per adapter, queue depth (waiting, in flight, backing off), budget used, counts,
///   last success and last error;
/// - `GET /customers/{id}/crm`: the customer's sync with each adapter;
/// - `POST /crm/{adapter}/resync` `{"customers": [...]}` queues customers again;
/// - `POST /crm/{adapter}/dead-letters/replay` queues every dead-lettered customer of the adapter again.
struct CRMRoutes {
    let specs: [CRMAdapterSpec]
    let redis: RedisPool
    let maxBulkIds: Int

    func register<Context: RequestContext>(on group: DeclaredRoutes<Context>) {
        group.get("/crm", .crmRead) { _, _ in try await storage { try await list() } }
        group.get("/customers/:id/crm", .crmRead) { _, context in try await storage { try await customer(context.parameters.require("id")) } }
        group.post("/crm/:adapter/resync", .crmWrite) { request, context in
            try await storage {
                let outbox = try outbox(context.parameters.require("adapter"))
                let body = try await request.decodeJSON(ResyncBody.self, maxBytes: 1 << 20)
                guard (1...maxBulkIds).contains(body.customers.count) else {
                    throw APIError.badRequest("customers: 1 to \(maxBulkIds) ids", code: "invalid_body")
                }
                try await outbox.enqueue(body.customers)
                return try JSONResponse.encoded(Queued(queued: body.customers.count), status: .accepted)
            }
        }
        group.post("/crm/:adapter/dead-letters/replay", .crmWrite) { _, context in
            try await storage {
                let outbox = try outbox(context.parameters.require("adapter"))
                let replayed = try await outbox.replayDeadLetters()
                return try JSONResponse.encoded(Replayed(replayed: replayed), status: .accepted)
            }
        }
    }

    struct ResyncBody: Decodable { let customers: [String] }

    func outbox(_ name: String) throws -> CRMOutbox {
        guard specs.contains(where: { $0.name == name }) else { throw APIError.notFound("CRM adapter") }
        return CRMOutbox(redis: redis, adapter: name)
    }

    /// One adapter in `GET /crm`.
    struct AdapterView: Encodable {
        struct Queue: Encodable { let waiting, inFlight, retrying: Int }
        struct Daily: Encodable { let limit: Int, used: Int, resetsAt: String }
        struct Budget: Encodable {
            let requests: Int, windowMs: Int64, used: Int
            let concurrent: Int?
            let daily: Daily?
        }
        let adapter: String
        let style: String
        let queue: Queue
        let budget: Budget
        /// Every call waits until then (throttled, or the daily quota spent); nil when not paused.
        let pausedUntil: String?
        let batchSize: Int
        let synced, deadLettered, calls, throttled: Int
        let lastSuccessAt: String?
        let lastError: String?
        let lastErrorAt: String?
        /// A CRM with bulk imports (Eloqua): the newest five, the running ones with their progress.
        let bulkImports: [BulkImportView]?
    }

    /// One bulk import: its sync at the CRM, how far it is, and what its logs counted once done.
    struct BulkImportView: Encodable {
        let sync: String
        let status: String
        let records: Int
        let startedAt: String
        let updatedAt: String
        let finishedAt: String?
        let polls: Int
        let created, updated, rejected: Int?

        init(_ b: CRMOutbox.BulkImport) {
            sync = b.sync
            status = b.status
            records = b.records
            startedAt = JSONResponse.isoTime(b.startedAt)
            updatedAt = JSONResponse.isoTime(b.updatedAt)
            finishedAt = b.finishedAt.map(JSONResponse.isoTime)
            polls = b.polls
            created = b.created
            updated = b.updated
            rejected = b.rejected
        }
    }

    /// One adapter in `GET /customers/{id}/crm`.
    struct CustomerSyncView: Encodable {
        let adapter: String
        /// synced, waiting, in_flight, retrying, failed or never.
        let state: String
        let recordId: String?
        let syncedAt: String?
        let snapshots, syncedSnapshot, attempts: Int
        let lastError: String?
    }

    struct AdaptersView: Encodable { let adapters: [AdapterView] }
    struct CustomerView: Encodable {
        let customerId: String
        let crm: [CustomerSyncView]
    }
    struct Queued: Encodable { let queued: Int }
    struct Replayed: Encodable { let replayed: Int }

    static func time(_ stored: String?) -> String? { stored.flatMap(Int64.init).map(JSONResponse.isoTime) }
    static func iso(_ date: Date) -> String { JSONResponse.isoTime(Int64(date.timeIntervalSince1970 * 1000)) }

    func list() async throws -> Response {
        var items = [AdapterView]()
        for spec in specs {
            let outbox = CRMOutbox(redis: redis, adapter: spec.name)
            let s = try await outbox.status()
            let bulk = spec.style == .eloqua ? try await outbox.bulkImports().prefix(5).map(BulkImportView.init) : nil
            let budget = CRMBudget(redis: redis, adapter: spec.name, limit: spec.budget)
            let used = try await budget.used()
            let daily = try await budget.dailyUsage().map { AdapterView.Daily(limit: $0.limit, used: $0.used, resetsAt: Self.iso($0.resetsAt)) }
            let paused = try await budget.pausedUntil().map(Self.iso)
            func n(_ k: String) -> Int { Int(s.fields[k] ?? "") ?? 0 }
            items.append(
                AdapterView(
                    adapter: spec.name, style: spec.style.rawValue, queue: .init(waiting: s.waiting, inFlight: s.inFlight, retrying: s.retrying),
                    budget: .init(requests: spec.budget.requests, windowMs: spec.budget.windowMs, used: used, concurrent: spec.budget.concurrent, daily: daily),
                    pausedUntil: paused, batchSize: spec.batchSize,
                    synced: n("synced"), deadLettered: n("deadLettered"), calls: n("calls"), throttled: n("throttled"),
                    lastSuccessAt: Self.time(s.fields["lastSuccessAt"]), lastError: s.fields["lastError"], lastErrorAt: Self.time(s.fields["lastErrorAt"]),
                    bulkImports: bulk))
        }
        return try JSONResponse.encoded(AdaptersView(adapters: items))
    }

    func customer(_ id: String) async throws -> Response {
        var items = [CustomerSyncView]()
        for spec in specs {
            let (f, queue) = try await CRMOutbox(redis: redis, adapter: spec.name).customerStatus(id)
            let state = queue ?? (f["syncedAt"] != nil ? "synced" : f["lastError"] != nil ? "failed" : "never")
            items.append(
                CustomerSyncView(
                    adapter: spec.name, state: state, recordId: f["recordId"], syncedAt: Self.time(f["syncedAt"]), snapshots: Int(f["seq"] ?? "") ?? 0,
                    syncedSnapshot: Int(f["syncedSeq"] ?? "") ?? 0, attempts: Int(f["attempts"] ?? "") ?? 0, lastError: f["lastError"]))
        }
        return try JSONResponse.encoded(CustomerView(customerId: id, crm: items))
    }
}
