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
                return JSONResponse.ok(JSONText.object([("queued", String(body.customers.count))]), status: .accepted)
            }
        }
        group.post("/crm/:adapter/dead-letters/replay", .crmWrite) { _, context in
            try await storage {
                let name = try context.parameters.require("adapter")
                let outbox = try outbox(name)
                var ids = [String]()
                var customers = Set<String>()
                var cursor = "-"
                while true {
                    let page = try await redis.send(["XRANGE", Keys.crmDeadLetters, cursor, "+", "COUNT", "1000"]).array ?? []
                    for e in page {
                        guard let parts = e.array, parts.count == 2, let id = parts[0].string else { continue }
                        let f = parts[1].dictionary
                        if f["adapter"] == name, let c = f["customer"] { customers.insert(c); ids.append(id) }
                        cursor = "(" + id
                    }
                    if page.count < 1000 { break }
                }
                try await outbox.enqueue(customers.sorted())
                for chunk in stride(from: 0, to: ids.count, by: 1000) {
                    _ = try await redis.send(["XDEL", Keys.crmDeadLetters] + ids[chunk..<min(chunk + 1000, ids.count)])
                }
                return JSONResponse.ok(JSONText.object([("replayed", String(customers.count))]), status: .accepted)
            }
        }
    }

    struct ResyncBody: Decodable { let customers: [String] }

    func outbox(_ name: String) throws -> CRMOutbox {
        guard specs.contains(where: { $0.name == name }) else { throw APIError.notFound("CRM adapter") }
        return CRMOutbox(redis: redis, adapter: name)
    }

    func list() async throws -> Response {
        var items = [String]()
        for spec in specs {
            let s = try await CRMOutbox(redis: redis, adapter: spec.name).status()
            let used = try await CRMBudget(redis: redis, adapter: spec.name, limit: spec.budget).used()
            func n(_ k: String) -> String { s.fields[k] ?? "0" }
            func t(_ k: String) -> String { s.fields[k].flatMap(Int64.init).map(JSONResponse.time) ?? "null" }
            items.append(
                JSONText.object([
                    ("adapter", JSONText.quote(spec.name)), ("style", JSONText.quote(spec.style.rawValue)),
                    ("queue", JSONText.object([("waiting", String(s.waiting)), ("inFlight", String(s.inFlight)), ("retrying", String(s.retrying))])),
                    ("budget", JSONText.object([("requests", String(spec.budget.requests)), ("windowMs", String(spec.budget.windowMs)), ("used", String(used))])),
                    ("batchSize", String(spec.batchSize)), ("synced", n("synced")), ("deadLettered", n("deadLettered")), ("calls", n("calls")),
                    ("throttled", n("throttled")), ("lastSuccessAt", t("lastSuccessAt")),
                    ("lastError", s.fields["lastError"].map(JSONText.quote) ?? "null"), ("lastErrorAt", t("lastErrorAt")),
                ]))
        }
        return JSONResponse.ok(JSONText.object([("adapters", "[" + items.joined(separator: ",") + "]")]))
    }

    func customer(_ id: String) async throws -> Response {
        var items = [String]()
        for spec in specs {
            let (f, queue) = try await CRMOutbox(redis: redis, adapter: spec.name).customerStatus(id)
            let state = queue ?? (f["syncedAt"] != nil ? "synced" : f["lastError"] != nil ? "failed" : "never")
            items.append(
                JSONText.object([
                    ("adapter", JSONText.quote(spec.name)), ("state", JSONText.quote(state)),
                    ("recordId", f["recordId"].map(JSONText.quote) ?? "null"),
                    ("syncedAt", f["syncedAt"].flatMap(Int64.init).map(JSONResponse.time) ?? "null"),
                    ("snapshots", f["seq"] ?? "0"), ("syncedSnapshot", f["syncedSeq"] ?? "0"), ("attempts", f["attempts"] ?? "0"),
                    ("lastError", f["lastError"].map(JSONText.quote) ?? "null"),
                ]))
        }
        return JSONResponse.ok(JSONText.object([("customerId", JSONText.quote(id)), ("crm", "[" + items.joined(separator: ",") + "]")]))
    }
}
