import Foundation
import GatewayCore
import HTTPAPI
import Hummingbird
import Ingress
import Store

/// `/api/v1/keys` (create, list, revoke API keys), `/api/v1/audit` (read the audit log) and
/// `/api/v1/me` (who the caller is and what it may do).
struct AccessRoutes {
    let keys: APIKeyStore
    let audit: AuditLog
    let clock: @Sendable () -> Int64

    struct CreateKeyBody: Decodable {
        let name: String
        let role: String
        let grants: [String]?
        /// ISO 8601; absent = never.
        let expiresAt: String?
    }

    struct KeyView: Encodable {
        let id: String
        let prefix: String
        let name: String
        let role: String
        let grants: [String]
        let createdAt: String
        let createdBy: String
        let expiresAt: String?
        let lastUsedAt: String?
        let revokedAt: String?
        /// The whole key: in the answer to its creation only.
        let key: String?

        init(_ k: APIKeyStore.Key, secret: String? = nil) {
            id = k.id
            prefix = k.prefix
            name = k.name
            role = k.role.rawValue
            grants = k.grants.map(\.rawValue).sorted()
            createdAt = JSONResponse.isoTime(k.createdAt)
            createdBy = k.createdBy
            expiresAt = k.expiresAt.map(JSONResponse.isoTime)
            lastUsedAt = k.lastUsedAt.map(JSONResponse.isoTime)
            revokedAt = k.revokedAt.map(JSONResponse.isoTime)
            key = secret
        }
    }

    struct KeyList: Encodable { let keys: [KeyView] }

    struct AuditView: Encodable {
        let id: String
        let actor: String
        let role: String
        let method: String
        let route: String
        let targets: [String]
        let status: Int
        let outcome: String
        let at: String

        init(_ e: AuditLog.Entry) {
            id = e.id
            actor = e.actor
            role = e.role
            method = e.method
            route = e.route
            targets = e.targets
            status = e.status
            outcome = e.outcome
            at = JSONResponse.isoTime(e.at)
        }
    }

    struct AuditPage: Encodable {
        let entries: [AuditView]
        /// Pass as `after` for the next page; null at the end.
        let next: String?
    }

    struct Me: Encodable {
        let actor: String
        let role: String
        let permissions: [String]
    }

    func register<Context: RequestContext>(on group: DeclaredRoutes<Context>) {
        group.post("/keys", .keysManage) { request, _ in
            try await storage {
                let body = try await request.decodeJSON(CreateKeyBody.self, maxBytes: 4096)
                let (role, grants, expiresAt) = try validate(body)
                let created = try await keys.create(
                    name: body.name, role: role, grants: grants, expiresAt: expiresAt, createdBy: Principal.current?.actor ?? "", nowMs: clock())
                AuditNote.target(created.key.id)
                return try JSONResponse.encoded(KeyView(created.key, secret: created.secret), status: .created)
            }
        }
        group.get("/keys", .keysManage) { _, _ in
            try await storage { try JSONResponse.encoded(KeyList(keys: try await keys.list().map { KeyView($0) })) }
        }
        group.delete("/keys/:id", .keysManage) { _, context in
            try await storage {
                guard let key = try await keys.revoke(try context.parameters.require("id"), nowMs: clock()) else { throw APIError.notFound("key") }
                return try JSONResponse.encoded(KeyView(key))
            }
        }
        group.get("/audit", .auditRead) { request, _ in
            try await storage {
                let q = request.uri.queryParameters
                guard let limit = Int(q.get("limit") ?? "100"), (1...1000).contains(limit) else {
                    throw APIError.badRequest("limit must be 1...1000", code: "invalid_limit")
                }
                var since: Int64?
                if let s = q.get("since") {
                    guard let ms = Int64(s) ?? CampaignDefinition.milliseconds(String(s)) else {
                        throw APIError.badRequest("since must be an ISO 8601 time or epoch milliseconds", code: "invalid_since")
                    }
                    since = ms
                }
                let after = q.get("after").map { String($0) }
                if let after, !Self.isStreamId(after) { throw APIError.badRequest("after must be the next of the previous page", code: "invalid_cursor") }
                let order = q.get("order") ?? "oldest"
                guard order == "oldest" || order == "newest" else { throw APIError.badRequest("order must be oldest or newest", code: "invalid_order") }
                let page = try await audit.read(
                    sinceMs: since, after: after, actor: q.get("actor").map { String($0) }, limit: limit, newestFirst: order == "newest")
                return try JSONResponse.encoded(AuditPage(entries: page.entries.map { AuditView($0) }, next: page.next))
            }
        }
        group.get("/me", .session) { _, _ in
            guard let p = Principal.current else { throw APIError(.unauthorized, "unauthorized", "not signed in") }
            return try JSONResponse.encoded(Me(actor: p.actor, role: p.role.rawValue, permissions: p.permissions.map(\.rawValue)))
        }
    }

    func validate(_ body: CreateKeyBody) throws -> (Role, Set<Permission>, Int64?) {
        let name = body.name
        guard (1...64).contains(name.count), !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw APIError.badRequest("name must be 1 to 64 printable characters", code: "invalid_name")
        }
        guard let role = Role(rawValue: body.role) else {
            throw APIError.badRequest("role must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))", code: "invalid_role")
        }
        let grants = try Self.grants(body.grants)
        var expiresAt: Int64?
        if let e = body.expiresAt {
            guard let ms = CampaignDefinition.milliseconds(e) else { throw APIError.badRequest("expiresAt must be an ISO 8601 time", code: "invalid_expiry") }
            guard ms > clock() else { throw APIError.badRequest("expiresAt must be in the future", code: "invalid_expiry") }
            expiresAt = ms
        }
        return (role, grants, expiresAt)
    }

    /// Extra permissions for a key or an operator: only grantable ones.
    static func grants(_ names: [String]?) throws -> Set<Permission> {
        var grants = Set<Permission>()
        for g in names ?? [] {
            guard let p = Permission(rawValue: g), Permission.grantable.contains(p) else {
                throw APIError.badRequest(
                    "grant \(g.prefix(40)) is not grantable (grantable: \(Permission.grantable.map(\.rawValue).sorted().joined(separator: ", ")))",
                    code: "invalid_grant")
            }
            grants.insert(p)
        }
        return grants
    }

    static func isStreamId(_ s: String) -> Bool {
        let parts = s.split(separator: "-", omittingEmptySubsequences: false)
        return parts.count == 2 && parts.allSatisfy { !$0.isEmpty && $0.count <= 20 && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }
    }
}
