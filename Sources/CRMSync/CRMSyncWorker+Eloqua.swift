import Foundation
import GatewayCore
import HTTPTransport
import Logging
import Metrics
import Store

/// An Eloqua batch: a small one contact by contact through the REST API, a large one (`bulk.min_records`
/// or more) as one Bulk API 2.0 import whose sync is polled to the end, its progress recorded for
/// `GET /api/v1/crm`. Every call but `/id` is counted in the shared budget.
extension CRMSyncWorker {
    /// The instance's base URL and contact field ids (internal name -> id).
    struct EloquaInstance {
        let base: String
        let fieldIds: [String: String]
    }

    /// The instance cannot be reached or refuses us: the sync pauses (`refused`: for longer).
    struct EloquaUnavailable: Error, CustomStringConvertible {
        let reason: String
        let refused: Bool
        var description: String { reason }
    }

    var eloqua: EloquaWire { EloquaWire(spec: spec) }

    /// The base URL and field ids another process found (Redis, a day), else discovered: `/id`, then the
    /// contact fields, every mapped field checked to exist.
    func eloquaInstance() async throws -> EloquaInstance {
        let cached = try await outbox.discovery()
        if let base = cached["base"], let text = cached["fields"], case .object(let o)? = JSONValue.parse(Array(text.utf8)) {
            return EloquaInstance(base: base, fieldIds: o.compactMapValues(\.scalarText))
        }
        let answer: HTTPResponse
        do { answer = try await transport.send(eloqua.discoveryRequest()) } catch {
            throw EloquaUnavailable(reason: "login /id: transport: \(error)", refused: false)
        }
        let base: String
        switch eloqua.discovery(answer) {
        case .base(let b): base = b
        case .refused(let why): throw EloquaUnavailable(reason: why, refused: true)
        case .retry(let why): throw EloquaUnavailable(reason: why, refused: false)
        }
        var ids = [String: String]()
        var offset = 0
        while true {
            let r: HTTPResponse
            do { r = try await call(eloqua.fieldsRequest(base: base, offset: offset), slot: try await budget.acquire()) } catch let e as TransportError {
                throw EloquaUnavailable(reason: "contact fields: transport: \(e)", refused: false)
            }
            guard let page = eloqua.fields(r) else {
                throw EloquaUnavailable(reason: "contact fields: http_\(r.status): \(CRMWire.snippet(r))", refused: (400..<500).contains(r.status) && r.status != 429)
            }
            ids.merge(page.ids) { a, _ in a }
            guard page.hasMore, !page.ids.isEmpty else { break }
            offset += 1000
        }
        let missing = spec.fields.map(\.property).filter { $0 != CRMAdapterSpec.eloquaEmailField && ids[$0] == nil }
        guard missing.isEmpty else {
            throw EloquaUnavailable(reason: "not contact fields in this Eloqua instance: \(missing.joined(separator: ", ")) (create them, or fix the spec's fields)", refused: true)
        }
        let fields = JSONValue.object(ids.mapValues(JSONValue.string)).text
        try await outbox.saveDiscovery(["base": base, "fields": fields], ttlSeconds: 86_400)
        logger.info("eloqua instance discovered", metadata: ["adapter": "\(spec.name)", "base": "\(base)", "fields": "\(ids.count)"])
        return EloquaInstance(base: base, fieldIds: ids)
    }

    /// One call on `slot` when it is still unspent, else on a new one.
    func eloquaCall(_ request: HTTPRequest, _ slot: inout CRMBudget.Slot?) async throws -> HTTPResponse {
        let s: CRMBudget.Slot
        if let given = slot {
            s = given
            slot = nil
        } else {
            s = try await budget.acquire()
        }
        return try await call(request, slot: s)
    }

    func sendEloqua(_ taken: [CRMRecord], token: String, slot: CRMBudget.Slot) async throws {
        var results = [Settled]()
        var keyed = [CRMRecord]()
        for r in taken {
            if eloqua.values(r).email == nil {
                results.append((r.customer, r.seq, .failed(code: "no_email", message: "Eloqua keys contacts by email address, and this customer has none")))
            } else {
                keyed.append(r)
            }
        }
        var unspent: CRMBudget.Slot? = slot
        if !keyed.isEmpty {
            do {
                let instance = try await eloquaInstance()
                if keyed.count >= spec.bulk.minRecords {
                    results += try await eloquaBulk(keyed, instance: instance, token: token, slot: &unspent)
                } else {
                    results += try await eloquaREST(keyed, instance: instance, slot: &unspent)
                }
            } catch let e as EloquaUnavailable {
                try await budget.pause(ms: e.refused ? 300_000 : 30_000)
                try await outbox.noteError("eloqua: \(e.reason)", nowMs: clock(), throttled: false)
                results += keyed.map { ($0.customer, $0.seq, .hold(reason: "eloqua unavailable")) }
            }
        }
        if let unspent { try await budget.refund(unspent) }
        try await noteRefusals(results)
        let synced = try await outbox.finish(token: token, results: results, policy: policy, nowMs: clock())
        Counter(label: "scrm_crm_records_synced_total", dimensions: [("adapter", spec.name)]).increment(by: synced)
    }

    // MARK: REST, contact by contact

    /// What became of one contact, or a reason to stop the batch (throttled, credentials refused), the
    /// rest held for the next try.
    enum ContactVerdict {
        case settled(CRMOutbox.Result)
        case halt(CRMOutbox.Result)
    }

    func eloquaREST(_ records: [CRMRecord], instance: EloquaInstance, slot: inout CRMBudget.Slot?) async throws -> [Settled] {
        var out = [Settled]()
        var halted: CRMOutbox.Result?
        for r in records {
            if let halted {
                out.append((r.customer, r.seq, halted))
                continue
            }
            let verdict: ContactVerdict
            do { verdict = try await eloquaUpsert(r, instance: instance, slot: &slot) } catch let e as TransportError {
                verdict = .settled(.retry(reason: "transport: \(e)"))
            }
            switch verdict {
            case .settled(let result): out.append((r.customer, r.seq, result))
            case .halt(let result):
                halted = result
                out.append((r.customer, r.seq, result))
            }
        }
        Counter(label: "scrm_crm_calls_total", dimensions: [("adapter", spec.name), ("result", halted == nil ? "answered" : "halted")]).increment()
        return out
    }

    /// The contact id this adapter stored for the customer (`crm:<adapter>:<id>`).
    func eloquaContactId(_ r: CRMRecord) -> String? {
        let prefix = "crm:\(spec.name):"
        return r.identities.first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
    }

    /// Update by the contact id we hold (gone: create); create; a 409 (the email exists) is searched
    /// for by email and updated.
    func eloquaUpsert(_ r: CRMRecord, instance: EloquaInstance, slot: inout CRMBudget.Slot?) async throws -> ContactVerdict {
        let base = instance.base
        if let id = eloquaContactId(r) {
            let a = eloqua.answer(try await eloquaCall(eloqua.updateRequest(base: base, contactId: id, r, fieldIds: instance.fieldIds), &slot))
            if a != .notFound { return try await verdict(a, contactId: id) }
        }
        let created = eloqua.answer(try await eloquaCall(eloqua.createRequest(base: base, r, fieldIds: instance.fieldIds), &slot))
        guard created == .conflict else { return try await verdict(created, contactId: nil) }
        let email = eloqua.values(r).email ?? ""
        let found = try await eloquaCall(eloqua.searchRequest(base: base, field: "emailAddress", value: email), &slot)
        guard found.status == 200 else { return try await verdict(eloqua.answer(found), contactId: nil) }
        guard let id = eloqua.searchHit(found) else { return .settled(.retry(reason: "409 on create, and no contact found by its email address")) }
        return try await verdict(eloqua.answer(try await eloquaCall(eloqua.updateRequest(base: base, contactId: id, r, fieldIds: instance.fieldIds), &slot)), contactId: id)
    }

    func verdict(_ a: EloquaWire.Answer, contactId: String?) async throws -> ContactVerdict {
        switch a {
        case .ok(let id): return .settled(.synced(recordId: id ?? contactId))
        case .refused(let code, let message): return .settled(.failed(code: code, message: message))
        case .conflict, .notFound: return .settled(.retry(reason: "unexpected \(a)"))
        case .retry(let why): return .settled(.retry(reason: String(why.prefix(200))))
        case .throttled(let after, let detail):
            try await budget.pause(ms: after ?? spec.budget.windowMs)
            try await outbox.noteError("throttled: \(detail)", nowMs: clock(), throttled: true)
            return .halt(.hold(reason: "throttled"))
        case .unauthorized(let detail):
            // The instance may have moved, or the credentials changed: discover again before the next call.
            try await outbox.forgetDiscovery()
            try await outbox.noteError("eloqua refused the credentials: \(detail)", nowMs: clock(), throttled: false)
            return .halt(.retry(reason: "credentials refused"))
        }
    }

    // MARK: erasure

    /// Deletes the contact by the id we hold; without one, the contact holding our id is searched for
    /// first (`.found`, deleted next); none = erased.
    func eloquaErasure(customer: String, recordId: String?, slot unspent: inout CRMBudget.Slot?) async throws -> CRMOutbox.ErasureResult {
        let instance: EloquaInstance
        do { instance = try await eloquaInstance() } catch let e as EloquaUnavailable {
            return .retry(afterMs: e.refused ? 300_000 : 30_000, reason: "eloqua: \(e.reason)")
        }
        let request = recordId.map { eloqua.deleteRequest(base: instance.base, contactId: $0) }
            ?? eloqua.searchRequest(base: instance.base, field: spec.idProperty, value: customer)
        let r: HTTPResponse
        do { r = try await eloquaCall(request, &unspent) } catch let e as TransportError {
            return .retry(afterMs: 30_000, reason: "transport: \(e)")
        }
        switch eloqua.answer(r) {
        case .ok, .notFound:
            guard recordId == nil else { return .erased }
            return eloqua.searchHit(r).map { .found(recordId: $0) } ?? .erased
        case .refused(let code, let message): return .refused(code: code, message: message)
        case .throttled(let after, let detail): return .retry(afterMs: after ?? spec.budget.windowMs, reason: "throttled: \(detail)")
        case .unauthorized(let detail):
            try await outbox.forgetDiscovery()
            return .retry(afterMs: 30_000, reason: detail)
        case .conflict, .retry: return .retry(afterMs: 30_000, reason: "http_\(r.status): \(CRMWire.snippet(r))")
        }
    }
}
