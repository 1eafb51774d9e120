import Foundation
import Hummingbird

/// The Bulk API 2.0 contact import of `EloquaFake`: definitions, staged rows, syncs that take
/// `syncMs` to run, their rejects and logs.
extension EloquaFake {
    static let maxUpload = 32 * 1024 * 1024

    func addBulk(to router: Router<BasicRequestContext>) {
        router.post("/api/bulk/2.0/contacts/imports") { request, _ -> Response in
            let body = jsonObject(try await request.body.collect(upTo: 1 << 20)) ?? [:]
            return self.call("import", request) {
                guard let fields = body["fields"] as? [String: String], !fields.isEmpty, body["name"] is String else {
                    return Self.validation("fields", "NotNullRequirement", "", status: 400)
                }
                guard fields.count <= 100 else { return Self.validation("fields", "MaximumFieldsRequirement", "\(fields.count)", status: 400) }
                var mapping = [String: String]()
                for (name, statement) in fields {
                    guard statement.hasPrefix("{{Contact.Field("), statement.hasSuffix(")}}") else {
                        return Self.validation("fields", "ValidMarkupRequirement", statement, status: 400)
                    }
                    let field = String(statement.dropFirst(16).dropLast(3))
                    guard self.fieldIds[field] != nil else { return Self.validation("fields", "ValidFieldRequirement", statement, status: 400) }
                    mapping[name] = field
                }
                guard let identifier = body["identifierFieldName"] as? String, fields[identifier] != nil else {
                    return Self.validation("identifierFieldName", "ValidFieldRequirement", "\(body["identifierFieldName"] ?? "")", status: 400)
                }
                let n = self.state.withLockedValue { s -> Int in
                    let n = s.nextUri
                    s.nextUri += 1
                    s.definitions[n] = mapping
                    return n
                }
                return jsonResponse(
                    ["name": body["name"] ?? "", "fields": fields, "identifierFieldName": identifier, "uri": "/contacts/imports/\(n)", "createdAt": Self.now()],
                    status: 201)
            }
        }
        router.post("/api/bulk/2.0/contacts/imports/:id/data") { request, context -> Response in
            let buffer = try await request.body.collect(upTo: Self.maxUpload + 1024)
            let n = context.parameters.get("id").flatMap { Int($0) } ?? 0
            return self.call("upload", request) {
                // Eloqua: "Requests larger than 32 MB will fail by returning a 404 Not Found response."
                guard buffer.readableBytes <= Self.maxUpload else { return Response(status: .notFound) }
                guard let rows = (try? JSONSerialization.jsonObject(with: Data(buffer: buffer))) as? [[String: Any]] else {
                    return Self.validation("data", "ValidJSONRequirement", "", status: 400)
                }
                return self.state.withLockedValue { s -> Response in
                    guard s.definitions[n] != nil else { return Response(status: .notFound) }
                    s.staged[n, default: []] += rows.map { flatten($0) }
                    s.largestUpload = max(s.largestUpload, rows.count)
                    return Response(status: .noContent)
                }
            }
        }
        router.post("/api/bulk/2.0/syncs") { request, _ -> Response in
            let body = jsonObject(try await request.body.collect(upTo: 1 << 16)) ?? [:]
            return self.call("sync", request) {
                let target = body["syncedInstanceUri"] as? String ?? ""
                guard target.hasPrefix("/contacts/imports/"), let n = Int(target.dropFirst(18)) else {
                    return Self.validation("syncedInstanceUri", "ValidUriRequirement", target, status: 400)
                }
                return self.state.withLockedValue { s -> Response in
                    guard s.definitions[n] != nil else { return Self.validation("syncedInstanceUri", "ValidUriRequirement", target, status: 400) }
                    let id = s.nextUri
                    s.nextUri += 1
                    s.syncs[id] = Sync(id: id, definition: n, createdAt: Self.uptime(), rows: s.staged.removeValue(forKey: n) ?? [])
                    return jsonResponse(["syncedInstanceUri": target, "status": "pending", "createdAt": Self.now(), "createdBy": self.user, "uri": "/syncs/\(id)"], status: 201)
                }
            }
        }
        router.get("/api/bulk/2.0/syncs/:id") { request, context -> Response in
            let id = context.parameters.get("id").flatMap { Int($0) } ?? 0
            return self.call("poll", request) {
                guard let (sync, status) = self.advance(id) else { return Response(status: .notFound) }
                return jsonResponse(["syncedInstanceUri": "/contacts/imports/\(sync.definition)", "status": status, "uri": "/syncs/\(id)", "createdAt": Self.now()])
            }
        }
        router.get("/api/bulk/2.0/syncs/:id/rejects") { request, context -> Response in
            let id = context.parameters.get("id").flatMap { Int($0) } ?? 0
            return self.call("rejects", request) {
                let q = request.uri.queryParameters
                let limit = min(q.get("limit").flatMap { Int($0) } ?? 1000, 1000)
                let offset = q.get("offset").flatMap { Int($0) } ?? 0
                guard let sync = self.state.withLockedValue({ $0.syncs[id] }) else { return Response(status: .notFound) }
                let page: [[String: Any]] = sync.rejects.dropFirst(offset).prefix(limit).map { r in
                    ["recordIndex": r.recordIndex, "statusCode": "ELQ-00002", "message": "Invalid email address.", "invalidFields": ["C_EmailAddress"], "fieldValues": r.row]
                }
                return jsonResponse(["items": page, "count": page.count, "limit": limit, "offset": offset, "totalResults": sync.rejects.count, "hasMore": offset + page.count < sync.rejects.count])
            }
        }
        router.get("/api/bulk/2.0/syncs/:id/logs") { request, context -> Response in
            let id = context.parameters.get("id").flatMap { Int($0) } ?? 0
            return self.call("logs", request) {
                guard let sync = self.state.withLockedValue({ $0.syncs[id] }), sync.finished else { return jsonResponse(["items": [] as [Any], "count": 0, "hasMore": false]) }
                let items: [[String: Any]] = [
                    ["statusCode": "ELQ-00001", "message": "Total records processed.", "count": sync.rows.count, "severity": "information", "syncUri": "/syncs/\(id)"],
                    ["statusCode": "ELQ-00004", "message": "Contacts created.", "count": sync.created, "severity": "information", "syncUri": "/syncs/\(id)"],
                    ["statusCode": "ELQ-00022", "message": "Contacts updated.", "count": sync.updated, "severity": "information", "syncUri": "/syncs/\(id)"],
                    ["statusCode": "ELQ-00060", "message": "Total rejected records.", "count": sync.rejects.count, "severity": "warning", "syncUri": "/syncs/\(id)"],
                ]
                return jsonResponse(["items": items, "count": items.count, "hasMore": false])
            }
        }
    }

    /// A sync's status now: pending for the first third of `syncMs`, active until it ends; then its
    /// rows are applied once (matched on the email address) and it is success, or warning with rejects.
    func advance(_ id: Int) -> (Sync, String)? {
        state.withLockedValue { s -> (Sync, String)? in
            guard var sync = s.syncs[id] else { return nil }
            sync.polls += 1
            let elapsed = Self.uptime() - sync.createdAt
            if !sync.finished, elapsed >= syncMs {
                let mapping = s.definitions[sync.definition] ?? [:]
                for (index, row) in sync.rows.enumerated() {
                    var fields = [String: String]()
                    for (name, value) in row { if let field = mapping[name] { fields[field] = value } }
                    let email = fields.removeValue(forKey: "C_EmailAddress") ?? ""
                    guard Self.validEmail(email) else {
                        sync.rejects.append(Reject(recordIndex: index + 1, row: row))
                        continue
                    }
                    if let existing = s.byEmail[email.lowercased()], var c = s.contacts[existing] {
                        c.fields.merge(fields) { _, new in new }
                        c.writes += 1
                        s.contacts[existing] = c
                        sync.updated += 1
                    } else {
                        _ = s.create(email: email, fields: fields, writes: 1)
                        sync.created += 1
                    }
                }
                sync.finished = true
            }
            s.syncs[id] = sync
            let status = sync.finished ? (sync.rejects.isEmpty ? "success" : "warning") : elapsed < syncMs / 3 ? "pending" : "active"
            return (sync, status)
        }
    }

    static func uptime() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
    static func now() -> String { ISO8601DateFormatter().string(from: Date()) }
}
