import Foundation
import GatewayCore
import HTTPTransport

/// Oracle Eloqua's requests and the reading of its answers. Pure: `CRMSyncWorker+Eloqua` sends.
/// - Basic auth is `site\user:password`, base64; every call but `/id` goes to the instance's base URL,
///   found by `GET <login_url>/id` (`urls.base`; a body of "Not authenticated." = refused).
/// - Contacts are keyed by email address (`C_EmailAddress`). The REST API has no upsert: a contact id
///   we hold is updated (`PUT /api/REST/1.0/data/contact/{id}`), otherwise one is created (`POST
///   .../data/contact`) and a 409 (the email exists) is searched for (`GET .../data/contacts?search=`)
///   and updated. Custom fields go in `fieldValues` by field id (`GET /api/bulk/2.0/contacts/fields`).
/// - A Bulk API 2.0 import: `POST /api/bulk/2.0/contacts/imports` (the definition, one per import,
///   deleted by Eloqua after a day), `POST <uri>/data` (the rows), `POST /api/bulk/2.0/syncs`
///   `{syncedInstanceUri}`, `GET /api/bulk/2.0/syncs/{id}` until `success`, `warning` or `error`, then
///   its `/rejects` and `/logs`.
public struct EloquaWire: Sendable {
    public let spec: CRMAdapterSpec

    public init(spec: CRMAdapterSpec) { self.spec = spec }

    static let timeoutMs = 30_000

    var authorization: (String, String) {
        let raw = spec.setting("site") + "\\" + spec.setting("user") + ":" + spec.setting("password")
        return ("Authorization", "Basic " + Data(raw.utf8).base64EncodedString())
    }

    func get(_ url: String) -> HTTPRequest {
        HTTPRequest(method: "GET", url: url, headers: [authorization, ("Accept", "application/json")], body: [], timeoutMs: Self.timeoutMs)
    }

    func json(_ method: String, _ url: String, _ body: JSONValue) -> HTTPRequest {
        HTTPRequest(
            method: method, url: url, headers: [authorization, ("Content-Type", "application/json"), ("Accept", "application/json")],
            body: Array(body.text.utf8), timeoutMs: Self.timeoutMs)
    }

    // MARK: discovery

    public func discoveryRequest() -> HTTPRequest { get(spec.setting("login_url") + "/id") }

    public enum Discovery: Sendable, Equatable {
        case base(String)
        /// Bad credentials, a disabled user or an address not on the instance's allow list.
        case refused(String)
        case retry(String)
    }

    public func discovery(_ r: HTTPResponse) -> Discovery {
        if r.status >= 500 || r.status == 408 || r.status == 429 { return .retry("login /id: http_\(r.status)") }
        let body = JSONValue.parse(r.body)
        guard r.status == 200, let base = body?.lookup("urls")?.lookup("base")?.scalarText, base.hasPrefix("http") else {
            return .refused("login /id: " + (r.text.isEmpty ? "http_\(r.status)" : String(r.text.prefix(200))))
        }
        return .base(base.hasSuffix("/") ? String(base.dropLast()) : base)
    }

    /// One page of the contact fields (1,000 a page).
    public func fieldsRequest(base: String, offset: Int) -> HTTPRequest {
        get(base + "/api/bulk/2.0/contacts/fields?limit=1000&offset=\(offset)")
    }

    /// Internal name -> field id (the end of its `uri`, `/contacts/fields/100001`), and whether there
    /// are more pages; nil when the answer is not a field list.
    public func fields(_ r: HTTPResponse) -> (ids: [String: String], hasMore: Bool)? {
        guard r.status == 200, let body = JSONValue.parse(r.body), case .array(let items)? = body.lookup("items") else { return nil }
        var ids = [String: String]()
        for item in items {
            guard let name = item.lookup("internalName")?.scalarText, let uri = item.lookup("uri")?.scalarText,
                let id = uri.split(separator: "/").last
            else { continue }
            ids[name] = String(id)
        }
        return (ids, body.lookup("hasMore") == .bool(true))
    }

    // MARK: REST contacts

    /// The mapped fields of a record as Eloqua takes them: every value a string, the email apart.
    public func values(_ r: CRMRecord) -> (email: String?, fields: [(String, String)]) {
        var email: String?
        var fields = [(String, String)]()
        for (name, value) in r.properties(spec) {
            let text = CRMWire.text(value)
            if name == CRMAdapterSpec.eloquaEmailField {
                email = text.isEmpty ? nil : text
            } else {
                fields.append((name, text))
            }
        }
        return (email, fields)
    }

    func contactBody(_ r: CRMRecord, id: String?, fieldIds: [String: String]) -> JSONValue {
        let (email, fields) = values(r)
        var o: [String: JSONValue] = ["type": .string("Contact"), "emailAddress": .string(email ?? "")]
        if let id { o["id"] = .string(id) }
        o["fieldValues"] = .array(fields.compactMap { name, value in
            fieldIds[name].map { JSONValue.object(["type": .string("FieldValue"), "id": .string($0), "value": .string(value)]) }
        })
        return .object(o)
    }

    public func createRequest(base: String, _ r: CRMRecord, fieldIds: [String: String]) -> HTTPRequest {
        json("POST", base + "/api/REST/1.0/data/contact", contactBody(r, id: nil, fieldIds: fieldIds))
    }

    public func updateRequest(base: String, contactId: String, _ r: CRMRecord, fieldIds: [String: String]) -> HTTPRequest {
        json("PUT", base + "/api/REST/1.0/data/contact/" + CRMWire.pathSegment(contactId), contactBody(r, id: contactId, fieldIds: fieldIds))
    }

    /// The contact with this email address, or the one holding our id (an erasure).
    public func searchRequest(base: String, field: String, value: String) -> HTTPRequest {
        let term = "\(field)='\(value.replacingOccurrences(of: "'", with: ""))'"
        return get(base + "/api/REST/1.0/data/contacts?search=" + CRMWire.pathSegment(term) + "&depth=minimal&count=2")
    }

    public func deleteRequest(base: String, contactId: String) -> HTTPRequest {
        HTTPRequest(
            method: "DELETE", url: base + "/api/REST/1.0/data/contact/" + CRMWire.pathSegment(contactId), headers: [authorization], body: [],
            timeoutMs: Self.timeoutMs)
    }

    /// What one REST call said.
    public enum Answer: Sendable, Equatable {
        /// 200/201 (the contact's id when the body has one), 204 (a delete).
        case ok(id: String?)
        /// 409: a contact with that email address exists.
        case conflict
        /// 404: no such contact.
        case notFound
        /// 400 and other 4xx: the record's own fault (Eloqua's validation requirement as the code).
        case refused(code: String, message: String)
        /// 401: credentials refused or the instance moved: discover the base URL again.
        case unauthorized(String)
        case throttled(retryAfterMs: Int64?, detail: String)
        case retry(String)
    }

    public func answer(_ r: HTTPResponse) -> Answer {
        switch r.status {
        case 200, 201, 202: return .ok(id: JSONValue.parse(r.body)?.lookup("id")?.scalarText)
        case 204: return .ok(id: nil)
        case 409: return .conflict
        case 404: return .notFound
        case 401: return .unauthorized("http_401: \(CRMWire.snippet(r))")
        case 429: return .throttled(retryAfterMs: CRMWire.retryAfterMs(r), detail: CRMWire.snippet(r))
        case 408, 500...: return .retry("http_\(r.status): \(CRMWire.snippet(r))")
        default:
            // Validation errors: [{"type": "ObjectValidationError", "property", "requirement": {"type"}, "value"}].
            var code = "http_\(r.status)"
            if case .array(let errors)? = JSONValue.parse(r.body), let e = errors.first {
                code = e.lookup("requirement")?.lookup("type")?.scalarText ?? e.lookup("type")?.scalarText ?? code
            }
            return .refused(code: code, message: CRMWire.snippet(r))
        }
    }

    /// The first contact id of a search's `elements` (nil = none).
    public func searchHit(_ r: HTTPResponse) -> String? {
        guard case .array(let elements)? = JSONValue.parse(r.body)?.lookup("elements") else { return nil }
        return elements.first?.lookup("id")?.scalarText
    }

    // MARK: Bulk API 2.0 import

    /// One import definition per import (a definition is not synced twice at once): every mapped
    /// field, matched on the email address, updating existing contacts only with the values a row
    /// has (`ifNewIsNotNull`: a field we hold nothing for keeps what Eloqua has, as a REST update does);
    /// deleted by Eloqua after a day.
    public func importDefinitionRequest(base: String, name: String) -> HTTPRequest {
        var fields = [String: JSONValue]()
        for (property, _) in spec.fields { fields[property] = .string("{{Contact.Field(\(property))}}") }
        return json(
            "POST", base + "/api/bulk/2.0/contacts/imports",
            .object([
                "name": .string(name), "fields": .object(fields), "identifierFieldName": .string(CRMAdapterSpec.eloquaEmailField),
                "isSyncTriggeredOnImport": .bool(false), "updateRule": .string("ifNewIsNotNull"), "autoDeleteDuration": .string("P1D"),
            ]))
    }

    /// One row of an import: the mapped fields by internal name, every value a string.
    public func row(_ r: CRMRecord) -> String {
        let (email, fields) = values(r)
        var o = Dictionary(uniqueKeysWithValues: fields.map { ($0.0, JSONValue.string($0.1)) })
        o[CRMAdapterSpec.eloquaEmailField] = .string(email ?? "")
        return JSONValue.object(o).text
    }

    public func importDataRequest(base: String, definition: String, rows: [String]) -> HTTPRequest {
        HTTPRequest(
            method: "POST", url: base + "/api/bulk/2.0" + definition + "/data",
            headers: [authorization, ("Content-Type", "application/json")], body: Array(("[" + rows.joined(separator: ",") + "]").utf8),
            timeoutMs: 120_000)
    }

    public func syncRequest(base: String, definition: String) -> HTTPRequest {
        json("POST", base + "/api/bulk/2.0/syncs", .object(["syncedInstanceUri": .string(definition)]))
    }

    public func syncStatusRequest(base: String, sync: String) -> HTTPRequest { get(base + "/api/bulk/2.0" + sync) }

    public func rejectsRequest(base: String, sync: String, offset: Int) -> HTTPRequest {
        get(base + "/api/bulk/2.0" + sync + "/rejects?limit=1000&offset=\(offset)")
    }

    public func logsRequest(base: String, sync: String) -> HTTPRequest { get(base + "/api/bulk/2.0" + sync + "/logs?limit=1000") }

    /// The `uri` of a created definition or sync (`/contacts/imports/1183`, `/syncs/2941`).
    public func uri(_ r: HTTPResponse) -> String? {
        guard (200..<300).contains(r.status), let uri = JSONValue.parse(r.body)?.lookup("uri")?.scalarText, uri.hasPrefix("/") else { return nil }
        return uri
    }

    /// A sync's `status`: pending, active, success, warning or error.
    public func syncStatus(_ r: HTTPResponse) -> String? {
        guard r.status == 200 else { return nil }
        return JSONValue.parse(r.body)?.lookup("status")?.scalarText
    }

    /// Rejected rows: our id (from the row's `fieldValues`) -> Eloqua's status code and message; and
    /// whether there are more pages.
    public func rejects(_ r: HTTPResponse) -> (rows: [String: (code: String, message: String)], count: Int, hasMore: Bool)? {
        guard r.status == 200, let body = JSONValue.parse(r.body), case .array(let items)? = body.lookup("items") else { return nil }
        var rows = [String: (code: String, message: String)]()
        for item in items {
            guard let ours = item.lookup("fieldValues")?.lookup(spec.idProperty)?.scalarText else { continue }
            rows[ours] = (item.lookup("statusCode")?.scalarText ?? "ELQ-00060", item.lookup("message")?.scalarText ?? "rejected")
        }
        return (rows, items.count, body.lookup("hasMore") == .bool(true))
    }

    /// A sync log's counts by Eloqua status code (ELQ-00004 created, ELQ-00022 updated, ...).
    public func logCounts(_ r: HTTPResponse) -> [String: Int] {
        guard r.status == 200, case .array(let items)? = JSONValue.parse(r.body)?.lookup("items") else { return [:] }
        var counts = [String: Int]()
        for item in items {
            guard let code = item.lookup("statusCode")?.scalarText, let n = item.lookup("count")?.scalarText.flatMap({ Int($0) }) else { continue }
            counts[code, default: 0] += n
        }
        return counts
    }

    /// How many rows, from the first, fit in one upload under 32 MB.
    public func fitting(_ rows: [String]) -> Int {
        CRMWire.prefixFitting(rows.map(\.utf8.count), overhead: 2, cap: CRMAdapterSpec.maxBody[.eloqua] ?? Int.max)
    }
}
