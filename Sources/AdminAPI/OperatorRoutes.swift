import Foundation
import GatewayCore
import HTTPAPI
import HTTPTypes
import Hummingbird
import Ingress
import NIOCore
import Store

/// `/api/v1/operators` (console users: create, list, disable) and `/api/v1/session` (sign in with a
/// name and password, see the session, sign out). Signing in sets an HttpOnly, SameSite=Strict
/// cookie (Secure behind https) and answers the CSRF token that calls changing anything must send.
struct OperatorRoutes {
    let operators: OperatorStore
    let audit: AuditLog
    let config: GatewayConfig
    let clock: @Sendable () -> Int64

    struct CreateBody: Decodable {
        let name: String
        let password: String
        let role: String
        let grants: [String]?
    }

    struct LoginBody: Decodable {
        let name: String
        let password: String
    }

    struct OperatorView: Encodable {
        let name: String
        let role: String
        let grants: [String]
        let createdAt: String
        let createdBy: String
        let lastLoginAt: String?
        let disabledAt: String?

        init(_ o: OperatorStore.Operator) {
            name = o.name
            role = o.role.rawValue
            grants = o.grants.map(\.rawValue).sorted()
            createdAt = JSONResponse.isoTime(o.createdAt)
            createdBy = o.createdBy
            lastLoginAt = o.lastLoginAt.map(JSONResponse.isoTime)
            disabledAt = o.disabledAt.map(JSONResponse.isoTime)
        }
    }

    struct OperatorList: Encodable { let operators: [OperatorView] }

    struct SessionView: Encodable {
        let `operator`: String
        let role: String
        let permissions: [String]
        /// Send it as X-CSRF-Token with every call that changes something.
        let csrfToken: String
        let expiresAt: String
    }

    static let minimumPasswordLength = 12

    /// Sign-in: a public route (it is how a session starts), audited by hand.
    func registerSignIn<Context: RequestContext>(on router: DeclaredRoutes<Context>) {
        router.post("/api/v1/session", .public) { request, context in
            try await storage {
                let body = try await request.decodeJSON(LoginBody.self, maxBytes: 4096)
                let address = ClientAddress.of(request, context, trustedProxies: config.server.trustedProxies)
                let outcome = try await operators.login(name: body.name, password: body.password, address: address, nowMs: clock())
                let actor = "operator:" + String(body.name.prefix(64))
                switch outcome {
                case .signedIn(let token, let session):
                    await record(actor, session.role.rawValue, 200, "ok")
                    var response = try JSONResponse.encoded(view(session))
                    response.headers[.setCookie] = cookie(token, request: request, maxAge: config.admin.sessionMaxHours * 3600)
                    return response
                case .invalid:
                    await record(actor, "", 401, "failed")
                    throw APIError(.unauthorized, "invalid_credentials", "the name or the password is wrong")
                case .locked(let ms):
                    await record(actor, "", 429, "denied")
                    throw Self.tooMany("locked", "too many failed sign-ins for this name: try again later", ms)
                case .rateLimited(let ms):
                    throw Self.tooMany("rate_limited", "too many sign-in attempts from this address: try again later", ms)
                }
            }
        }
    }

    func register<Context: RequestContext>(on group: DeclaredRoutes<Context>) {
        group.get("/session", .session) { request, _ in
            try await storage {
                guard let token = request.cookies[OperatorSession.cookie]?.value,
                    let session = try await operators.session(token: token, nowMs: clock())
                else { throw APIError(.notFound, "no_session", "this call is not made with a session cookie (API keys have none)") }
                return try JSONResponse.encoded(view(session))
            }
        }
        group.delete("/session", .session) { request, _ in
            try await storage {
                if let token = request.cookies[OperatorSession.cookie]?.value { try await operators.logout(token: token) }
                var response = Response(status: .noContent)
                response.headers[.setCookie] = cookie("", request: request, maxAge: 0)
                return response
            }
        }
        group.post("/operators", .operatorsManage) { request, _ in
            try await storage {
                let body = try await request.decodeJSON(CreateBody.self, maxBytes: 4096)
                guard OperatorStore.isName(body.name) else {
                    throw APIError.badRequest("name must be 2 to 64 of a-z 0-9 . _ - @", code: "invalid_name")
                }
                guard body.password.count >= Self.minimumPasswordLength, body.password.utf8.count <= 256 else {
                    throw APIError.badRequest("password must be \(Self.minimumPasswordLength) to 256 characters", code: "weak_password")
                }
                guard let role = Role(rawValue: body.role) else {
                    throw APIError.badRequest("role must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))", code: "invalid_role")
                }
                let grants = try AccessRoutes.grants(body.grants)
                AuditNote.target(body.name)
                guard try await operators.create(
                    name: body.name, password: body.password, role: role, grants: grants, createdBy: Principal.current?.actor ?? "", nowMs: clock())
                else { throw APIError(.conflict, "exists", "an operator named \(body.name) exists") }
                guard let made = try await operators.get(body.name) else { throw APIError.unavailable }
                return try JSONResponse.encoded(OperatorView(made), status: .created)
            }
        }
        group.get("/operators", .operatorsManage) { _, _ in
            try await storage { try JSONResponse.encoded(OperatorList(operators: try await operators.list().map { OperatorView($0) })) }
        }
        group.delete("/operators/:name", .operatorsManage) { _, context in
            try await storage {
                guard let op = try await operators.disable(try context.parameters.require("name"), nowMs: clock()) else { throw APIError.notFound("operator") }
                return try JSONResponse.encoded(OperatorView(op))
            }
        }
    }

    func view(_ s: OperatorStore.Session) -> SessionView {
        let principal = Principal(kind: .operator, id: s.operatorName, role: s.role, grants: s.grants)
        return SessionView(
            operator: s.operatorName, role: s.role.rawValue, permissions: principal.permissions.map(\.rawValue),
            csrfToken: s.csrf, expiresAt: JSONResponse.isoTime(s.expiresAt))
    }

    func cookie(_ token: String, request: Request, maxAge: Int) -> String {
        let secure = config.outbound.publicURL.hasPrefix("https://") || request.headers[HTTPField.Name("X-Forwarded-Proto")!] == "https"
        return "\(OperatorSession.cookie)=\(token); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "")
    }

    func record(_ actor: String, _ role: String, _ status: Int, _ outcome: String) async {
        let entry = AuditLog.Entry(actor: actor, role: role, method: "POST", route: "/api/v1/session", targets: [], status: status, outcome: outcome, at: clock())
        try? await audit.append(entry)
    }

    static func tooMany(_ code: String, _ message: String, _ ms: Int64) -> APIError {
        var error = APIError(.tooManyRequests, code, message)
        error.headers[.retryAfter] = String(max(1, (ms + 999) / 1000))
        return error
    }
}

/// The client's address: the peer, or when the peer is a trusted proxy, the last address in
/// X-Forwarded-For that is not one.
enum ClientAddress {
    static func of(_ request: Request, _ context: some RequestContext, trustedProxies: [String]) -> String {
        let peer = (context as? any RemoteAddressRequestContext)?.remoteAddress?.ipAddress ?? "unknown"
        guard trustedProxies.contains(peer), let forwarded = request.headers[HTTPField.Name("X-Forwarded-For")!] else { return peer }
        let hops = forwarded.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        return hops.last { !trustedProxies.contains($0) } ?? peer
    }
}
