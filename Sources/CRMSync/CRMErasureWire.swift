import Foundation
import GatewayCore
import HTTPTransport
import Store

/// How each CRM style is told that a person was erased, and how its answer reads:
/// - HubSpot: `POST /crm/v3/objects/contacts/gdpr-delete` `{"objectId": <record id>}` (a permanent,
///   GDPR-compliant delete; 204), or by our unique id property (`"idProperty": "scrm_id"`) when the
///   record id never came back (a batch answered after the erasure); 404 = nothing there.
/// - Salesforce: `DELETE /services/data/<v>/sobjects/<object>/<record id>`, or by our external id
///   (`.../<object>/<id_property>/<customer>`) when the record id is unknown; 204, 404 = already gone.
/// - Webhook: a signed POST `{"type": "customer.erased", "sentAt", "customer": {"id", "recordId"?}}`.
/// - Marketo: `POST /rest/v1/leads/delete.json` `{"input": [{"id": <lead id>}]}`; a lead whose id never
///   came back is looked for by our lookup field first (`GET /rest/v1/leads.json?filterType=...`,
///   `marketoLookupRequest`).
extension CRMWire {
    public func erasureRequest(customer: String, recordId: String?, nowMs: Int64, accessToken: String? = nil) -> HTTPRequest {
        let bearer = [("Authorization", "Bearer " + (accessToken ?? spec.setting("token"))), ("Content-Type", "application/json")]
        switch spec.style {
        case .eloqua:
            preconditionFailure("an Eloqua erasure is sent by CRMSyncWorker.eloquaErasure (EloquaWire)")
        case .marketo:
            guard let recordId else { return marketoLookupRequest(customer: customer, bearer: bearer) }
            let id: JSONValue = Int64(recordId).map(JSONValue.int) ?? .string(recordId)
            return HTTPRequest(
                method: "POST", url: spec.setting("base_url") + "/rest/v1/leads/delete.json", headers: bearer,
                body: Array(JSONValue.object(["input": .array([.object(["id": id])])]).text.utf8), timeoutMs: 30_000)
        case .hubspot:
            let target: [String: JSONValue] = recordId.map { ["objectId": .string($0)] } ?? ["objectId": .string(customer), "idProperty": .string(spec.idProperty)]
            return HTTPRequest(
                method: "POST", url: spec.setting("base_url") + "/crm/v3/objects/contacts/gdpr-delete", headers: bearer,
                body: Array(JSONValue.object(target).text.utf8), timeoutMs: 30_000)
        case .salesforce:
            let base = spec.setting("base_url") + "/services/data/\(spec.apiVersion)/sobjects/\(spec.object)/"
            let path = recordId.map { Self.pathSegment($0) } ?? "\(spec.idProperty)/\(Self.pathSegment(customer))"
            return HTTPRequest(method: "DELETE", url: base + path, headers: bearer, body: [], timeoutMs: 30_000)
        case .webhook:
            var person: [String: JSONValue] = ["id": .string(customer)]
            if let recordId { person["recordId"] = .string(recordId) }
            let body = Array(JSONValue.object(["type": .string("customer.erased"), "sentAt": .int(nowMs), "customer": .object(person)]).text.utf8)
            return HTTPRequest(
                method: "POST", url: spec.setting("url"),
                headers: [
                    ("Content-Type", "application/json"), ("Idempotency-Key", "erase-\(customer)"),
                    (CRMSignature.header, CRMSignature.sign(secret: spec.setting("secret"), timestamp: nowMs / 1000, body: body)),
                ],
                body: body, timeoutMs: 30_000)
        }
    }

    /// The lead holding our id, for a Marketo erasure without the lead id.
    func marketoLookupRequest(customer: String, bearer: [(String, String)]) -> HTTPRequest {
        HTTPRequest(
            method: "GET",
            url: spec.setting("base_url") + "/rest/v1/leads.json?filterType=\(Self.pathSegment(spec.idProperty))&filterValues=\(Self.pathSegment(customer))&fields=id",
            headers: bearer, body: [], timeoutMs: 30_000)
    }

    /// 2xx or 404 (nothing there) = erased; 429, 5xx, 408 and expired credentials = later; another
    /// 4xx = refused (dead-lettered for a person). Marketo: see `marketoErasureOutcome`.
    public func erasureOutcome(_ r: HTTPResponse) -> CRMOutbox.ErasureResult {
        if spec.style == .marketo { return marketoErasureOutcome(r) }
        if (200..<300).contains(r.status) || r.status == 404 { return .erased }
        let body = JSONValue.parse(r.body)
        var code = body?.lookup("category")?.scalarText ?? "http_\(r.status)"
        if case .array(let a)? = body, let first = a.first { code = first.lookup("errorCode")?.scalarText ?? code }
        if r.status == 429 || code == "REQUEST_LIMIT_EXCEEDED" {
            return .retry(afterMs: Self.retryAfterMs(r) ?? spec.budget.windowMs, reason: "throttled: \(Self.snippet(r))")
        }
        if r.status >= 500 || r.status == 408 || r.status == 401 || code == "INVALID_SESSION_ID" {
            return .retry(afterMs: 30_000, reason: "http_\(r.status): \(Self.snippet(r))")
        }
        return .refused(code: code, message: Self.snippet(r))
    }

    /// A Marketo delete: `deleted`, or skipped because no such lead (1004) = erased. A lookup (no lead
    /// id known): no lead = erased; a lead found = `.found` (deleted by its id next).
    /// 601/602/606/607/615 and the retryable codes = later.
    func marketoErasureOutcome(_ r: HTTPResponse) -> CRMOutbox.ErasureResult {
        guard r.status == 200, let body = JSONValue.parse(r.body) else { return .retry(afterMs: 30_000, reason: "http_\(r.status): \(Self.snippet(r))") }
        guard case .bool(true)? = body.lookup("success") else {
            let (code, message) = Self.marketoError(body, r)
            if ["601", "602", "604", "606", "607", "608", "611", "615", "713", ""].contains(code) {
                return .retry(afterMs: code == "607" ? 3_600_000 : 30_000, reason: (["606", "607", "615"].contains(code) ? "throttled: " : "") + "\(code) \(message)")
            }
            return .refused(code: code, message: message)
        }
        guard case .array(let results)? = body.lookup("result"), let first = results.first else { return .erased }  // a lookup that found nobody
        if let status = first.lookup("status")?.scalarText {
            if status == "deleted" { return .erased }
            let (code, message) = Self.marketoReason(first)
            return code == "1004" ? .erased : .refused(code: code, message: message)
        }
        if let id = first.lookup("id")?.scalarText { return .found(recordId: id) }
        return .erased
    }

    static func pathSegment(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? s
    }
}
