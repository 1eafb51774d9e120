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
extension CRMWire {
    public func erasureRequest(customer: String, recordId: String?, nowMs: Int64) -> HTTPRequest {
        let bearer = [("Authorization", "Bearer " + spec.setting("token")), ("Content-Type", "application/json")]
        switch spec.style {
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

    /// 2xx or 404 (nothing there) = erased; 429, 5xx, 408 and expired credentials = later; another
    /// 4xx = refused (dead-lettered for a person).
    public func erasureOutcome(_ r: HTTPResponse) -> CRMOutbox.ErasureResult {
        if (200..<300).contains(r.status) || r.status == 404 { return .erased }
        let body = JSONValue.parse(r.body)
        var code = body?.lookup("category")?.scalarText ?? "http_\(r.status)"
        if case .array(let a)? = body, let first = a.first { code = first.lookup("errorCode")?.scalarText ?? code }
        if r.status == 429 || code == "REQUEST_LIMIT_EXCEEDED" {
            let after = r.header("Retry-After").flatMap { Int64($0.trimmingCharacters(in: .whitespaces)) }.map { $0 * 1000 }
            return .retry(afterMs: after ?? spec.budget.windowMs, reason: "throttled: \(Self.snippet(r))")
        }
        if r.status >= 500 || r.status == 408 || r.status == 401 || code == "INVALID_SESSION_ID" {
            return .retry(afterMs: 30_000, reason: "http_\(r.status): \(Self.snippet(r))")
        }
        return .refused(code: code, message: Self.snippet(r))
    }

    static func pathSegment(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? s
    }
}
