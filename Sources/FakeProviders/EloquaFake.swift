import Foundation
import GatewayCrypto
import Hummingbird
import NIOConcurrencyHelpers

/// Oracle Eloqua as a loopback fake, with Eloqua's documented shapes and limits. Every call takes
/// Basic auth `site\user:password` (401 otherwise).
/// - `GET /id`: the instance's `urls.base` (this server); a body of "Not authenticated." for bad
///   credentials, as Eloqua answers.
/// - `GET /api/bulk/2.0/contacts/fields?limit&offset`: the contact fields, `uri` ending in the id.
/// - REST: `POST /api/REST/1.0/data/contact` (201; 409 when the email address exists; 400 for an
///   invalid one), `PUT .../contact/{id}` (404 when gone), `DELETE .../contact/{id}`,
///   `GET .../contacts?search=<field>='<value>'`. Custom fields in `fieldValues` by field id.
/// - Bulk API 2.0: `POST /api/bulk/2.0/contacts/imports` (at most 100 fields, every statement a known
///   `{{Contact.Field(...)}}`), `POST <uri>/data` (a JSON array; over 32 MB answers 404, as Eloqua
///   documents), `POST /api/bulk/2.0/syncs` `{syncedInstanceUri}`; `GET /syncs/{id}` goes pending,
///   then active, then success (or warning when rows were rejected) over `syncMs`; `/rejects` and
///   `/logs` after. Rows are matched on `C_EmailAddress`; an invalid email address is rejected.
/// - `rateLimit` calls per `windowMs` (Eloqua publishes none; a test sets one): 429 past it.
public final class EloquaFake: Sendable {
    public struct Contact: Sendable, Equatable {
        public let id: String
        public var email: String
        /// Internal name -> value.
        public var fields: [String: String]
        public var writes: Int
    }

    public struct Sync: Sendable {
        public let id: Int
        public let definition: Int
        let createdAt: Double
        public var polls = 0
        public var finished = false
        var rows: [[String: String]]
        var rejects: [Reject] = []
        var created = 0
        var updated = 0
    }

    /// A row a sync rejected (an invalid email address).
    struct Reject: Sendable {
        let recordIndex: Int
        let row: [String: String]
    }

    struct State {
        var contacts: [String: Contact] = [:]
        var byEmail: [String: String] = [:]
        var nextContact = 1001
        var definitions: [Int: [String: String]] = [:]
        var staged: [Int: [[String: String]]] = [:]
        var syncs: [Int: Sync] = [:]
        var nextUri = 1
        var calls: [String: Int] = [:]
        var callTimes: [Double] = []
        var throttled = 0
        var largestUpload = 0
        var discoveries = 0
        var unauthorizedAhead = 0
        var firstServedAt: Int64 = 0
        var lastServedAt: Int64 = 0

        /// A new contact with its id, found by its email address from then on.
        mutating func create(email: String, fields: [String: String], writes: Int) -> String {
            let id = String(nextContact)
            nextContact += 1
            contacts[id] = Contact(id: id, email: email, fields: fields, writes: writes)
            byEmail[email.lowercased()] = id
            return id
        }
    }

    let site: String
    let user: String
    let password: String
    let syncMs: Double
    let rateLimit: Int?
    let windowMs: Int
    /// Internal name -> field id.
    let fieldIds: [String: String]
    let state = NIOLockedValueBox(State())

    public static let standardFields = ["C_EmailAddress": "100001", "C_FirstName": "100002", "C_LastName": "100003", "C_Company": "100004", "C_BusPhone": "100006", "C_MobilePhone": "100017"]

    public init(site: String, user: String, password: String, customFields: [String] = [], syncMs: Int = 600, rateLimit: Int? = nil, windowMs: Int = 1_000) {
        self.site = site
        self.user = user
        self.password = password
        self.syncMs = Double(syncMs) / 1000
        self.rateLimit = rateLimit
        self.windowMs = windowMs
        var ids = Self.standardFields
        for (i, name) in customFields.enumerated() { ids[name] = String(100_200 + i) }
        fieldIds = ids
    }

    public var contacts: [String: Contact] { state.withLockedValue { $0.contacts } }
    /// Contacts by a field's value (our id in C_SCRM_Id1, say).
    public func contacts(by field: String) -> [String: Contact] {
        Dictionary(contacts.values.compactMap { c in c.fields[field].map { ($0, c) } }, uniquingKeysWith: { a, _ in a })
    }
    /// Calls per operation (discover, fields, create, update, search, delete, import, upload, sync, poll, rejects, logs).
    public var calls: [String: Int] { state.withLockedValue { $0.calls } }
    public var throttled: Int { state.withLockedValue { $0.throttled } }
    public var syncs: [Sync] { state.withLockedValue { $0.syncs.values.sorted { $0.id < $1.id } } }
    public var largestUpload: Int { state.withLockedValue { $0.largestUpload } }
    /// Puts a contact in directly (one another system created).
    public func seed(email: String, fields: [String: String] = [:]) -> String {
        state.withLockedValue { $0.create(email: email, fields: fields, writes: 0) }
    }

    /// The next `n` API calls answer 401 (the instance moved to another data centre, say).
    public func refuseNext(_ n: Int) { state.withLockedValue { $0.unauthorizedAhead = n } }

    func authorized(_ request: Request) -> Bool {
        guard let auth = request.headers[.authorization], auth.hasPrefix("Basic "),
            let decoded = Data(base64Encoded: String(auth.dropFirst(6))).map({ String(decoding: $0, as: UTF8.self) })
        else { return false }
        return ConstantTime.equals(decoded, "\(site)\\\(user):\(password)")
    }

    /// Auth, the rate window, then `body`.
    func call(_ op: String, _ request: Request, body: () throws -> Response) rethrows -> Response {
        let moved = state.withLockedValue { s -> Bool in
            guard s.unauthorizedAhead > 0 else { return false }
            s.unauthorizedAhead -= 1
            return true
        }
        guard authorized(request), !moved else { return Response(status: .unauthorized) }
        let now = Double(DispatchTime.now().uptimeNanoseconds) / 1e9
        let admitted = state.withLockedValue { s -> Bool in
            s.calls[op, default: 0] += 1
            let wall = Int64(Date().timeIntervalSince1970 * 1000)
            if s.firstServedAt == 0 { s.firstServedAt = wall }
            s.lastServedAt = wall
            guard let limit = rateLimit else { return true }
            s.callTimes.removeAll { $0 <= now - Double(windowMs) / 1000 }
            guard s.callTimes.count < limit else {
                s.throttled += 1
                return false
            }
            s.callTimes.append(now)
            return true
        }
        guard admitted else { return jsonResponse(["error": "Too Many Requests"], status: 429) }
        return try body()
    }

    static func validation(_ property: String, _ requirement: String, _ value: String, status: Int) -> Response {
        let error: [String: Any] = ["type": "ObjectValidationError", "property": property, "requirement": ["type": requirement], "value": value]
        let data = (try? JSONSerialization.data(withJSONObject: [error])) ?? Data()
        return Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func validEmail(_ e: String) -> Bool {
        let parts = e.split(separator: "@")
        return parts.count == 2 && parts[1].contains(".") && !e.contains(" ")
    }

    public func add(to router: Router<BasicRequestContext>) {
        router.get("/id") { request, _ -> Response in
            self.state.withLockedValue { $0.discoveries += 1; $0.calls["discover", default: 0] += 1 }
            guard self.authorized(request) else {
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "\"Not authenticated.\"")))
            }
            let host = request.head.authority ?? "127.0.0.1"
            let base = "http://\(host)"
            return jsonResponse([
                "site": ["id": 42, "name": self.site], "user": ["id": 314, "username": self.user],
                "urls": ["base": base, "apis": ["rest": ["standard": base + "/API/REST/{version}/", "bulk": base + "/API/Bulk/{version}/"]]],
            ])
        }
        router.get("/api/bulk/2.0/contacts/fields") { request, _ -> Response in
            self.call("fields", request) {
                let q = request.uri.queryParameters
                let limit = q.get("limit").flatMap { Int($0) } ?? 1000
                let offset = q.get("offset").flatMap { Int($0) } ?? 0
                let all = self.fieldIds.sorted { $0.value < $1.value }
                let page = all.dropFirst(offset).prefix(limit).map { name, id -> [String: Any] in
                    ["name": name, "internalName": name, "dataType": "string", "statement": "{{Contact.Field(\(name))}}", "uri": "/contacts/fields/\(id)"]
                }
                return jsonResponse(["items": Array(page), "count": page.count, "limit": limit, "offset": offset, "totalResults": all.count, "hasMore": offset + page.count < all.count])
            }
        }
        router.post("/api/REST/1.0/data/contact") { request, _ -> Response in
            let body = jsonObject(try await request.body.collect(upTo: 1 << 20)) ?? [:]
            return self.call("create", request) { self.write(id: nil, body) }
        }
        router.put("/api/REST/1.0/data/contact/:id") { request, context -> Response in
            let body = jsonObject(try await request.body.collect(upTo: 1 << 20)) ?? [:]
            let id = context.parameters.get("id") ?? ""
            return self.call("update", request) { self.write(id: id, body) }
        }
        router.delete("/api/REST/1.0/data/contact/:id") { request, context -> Response in
            let id = context.parameters.get("id") ?? ""
            return self.call("delete", request) {
                let gone = self.state.withLockedValue { s -> Bool in
                    guard let c = s.contacts.removeValue(forKey: id) else { return false }
                    s.byEmail[c.email.lowercased()] = nil
                    return true
                }
                return Response(status: gone ? .ok : .notFound)
            }
        }
        router.get("/api/REST/1.0/data/contacts") { request, _ -> Response in
            self.call("search", request) {
                let term = request.uri.queryParameters.get("search").map { String($0) } ?? ""
                let parts = term.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "' ")) }
                guard parts.count == 2 else { return jsonResponse(["elements": [] as [Any], "page": 1, "pageSize": 2, "total": 0]) }
                let hits = self.contacts.values.filter { c in
                    parts[0] == "emailAddress" ? c.email.lowercased() == parts[1].lowercased() : c.fields[parts[0]] == parts[1]
                }.sorted { $0.id < $1.id }
                let elements = hits.prefix(2).map { ["type": "Contact", "id": $0.id, "emailAddress": $0.email] }
                return jsonResponse(["elements": Array(elements), "page": 1, "pageSize": 2, "total": hits.count])
            }
        }
        addBulk(to: router)
        // A benchmark's view (the keys `scrm-bench crm` reads for every CRM): contacts as records, calls
        // in all, the largest upload as the largest batch, writes, imports and their polls.
        router.get("/_fakes/eloqua") { _, _ in
            let (contacts, calls, syncs) = (self.contacts, self.calls, self.syncs)
            let times = self.state.withLockedValue { ($0.firstServedAt, $0.lastServedAt) }
            return jsonResponse([
                "records": contacts.count, "calls": calls.values.reduce(0, +), "byOperation": calls, "throttled": self.throttled,
                "largestBatch": self.largestUpload, "writes": contacts.values.reduce(0) { $0 + $1.writes }, "imports": syncs.count,
                "polls": syncs.reduce(0) { $0 + $1.polls }, "firstServedAt": times.0, "lastServedAt": times.1,
            ])
        }
    }

    /// A REST create (`id` nil) or update.
    func write(id: String?, _ body: [String: Any]) -> Response {
        let email = body["emailAddress"] as? String ?? ""
        guard Self.validEmail(email) else { return Self.validation("emailAddress", "EmailAddressRequirement", email, status: 400) }
        var fields = [String: String]()
        let names = Dictionary(uniqueKeysWithValues: fieldIds.map { ($0.value, $0.key) })
        for v in body["fieldValues"] as? [[String: Any]] ?? [] {
            guard let fid = v["id"] as? String, let name = names[fid] else {
                return Self.validation("fieldValues", "FieldValueRequirement", "\(v["id"] ?? "")", status: 400)
            }
            fields[name] = v["value"] as? String ?? ""
        }
        return state.withLockedValue { s -> Response in
            let holder = s.byEmail[email.lowercased()]
            if let id {
                guard var c = s.contacts[id] else { return Response(status: .notFound) }
                if let holder, holder != id { return Self.validation("emailAddress", "UniquenessRequirement", email, status: 409) }
                s.byEmail[c.email.lowercased()] = nil
                c.email = email
                c.fields.merge(fields) { _, new in new }
                c.writes += 1
                s.contacts[id] = c
                s.byEmail[email.lowercased()] = id
                return jsonResponse(["type": "Contact", "id": id, "emailAddress": email])
            }
            if holder != nil { return Self.validation("emailAddress", "UniquenessRequirement", email, status: 409) }
            let newId = s.create(email: email, fields: fields, writes: 1)
            return jsonResponse(["type": "Contact", "id": newId, "emailAddress": email], status: 201)
        }
    }
}
