import Foundation
import GatewayCore
import GatewayCrypto
import HTTPAPI
import HTTPTypes
import Hummingbird
import Ingress
import RedisClient
import Store

/// Who is calling /api/v1: `Authorization: Bearer <API key or the bootstrap admin token>`, or an
/// operator's session cookie (`scrm_session`), whose calls that change anything must also carry the
/// session's `X-CSRF-Token`. The caller becomes `Principal.current` for the route, which checks its
/// own permission (`DeclaredRoutes`). Nothing is open by default: without a bootstrap token and
/// without a valid key or session, every call is refused.
struct AdminAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let bootstrapToken: String?
    let keys: APIKeyStore
    let operators: OperatorStore
    let clock: @Sendable () -> Int64


    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let principal = try await authenticate(request)
        return try await Principal.$current.withValue(principal) { try await next(request, context) }
    }

    func authenticate(_ request: Request) async throws -> Principal {
        if request.headers[.authorization] == nil, let token = request.cookies[OperatorSession.cookie]?.value {
            return try await sessionPrincipal(token, request)
        }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            if bootstrapToken == nil { throw Self.disabled }
            throw Self.unauthorized("send Authorization: Bearer <API key>", "Bearer")
        }
        let presented = String(header.dropFirst("Bearer ".count))
        if let bootstrapToken, ConstantTime.equals(presented, bootstrapToken) { return .bootstrap }
        guard presented.hasPrefix("scrm_") else {
            if bootstrapToken == nil { throw Self.disabled }
            throw Self.unauthorized("the API key is not valid", "Bearer error=\"invalid_token\"")
        }
        let check: APIKeyStore.Check
        do { check = try await keys.check(presented, nowMs: clock()) } catch is RedisError { throw APIError.unavailable }
        switch check {
        case .valid(let key): return Principal(kind: .key, id: key.id, role: key.role, grants: key.grants)
        case .revoked: throw Self.unauthorized("the API key was revoked", "Bearer error=\"invalid_token\"", code: "key_revoked")
        case .expired: throw Self.unauthorized("the API key has expired", "Bearer error=\"invalid_token\"", code: "key_expired")
        case .unknown: throw Self.unauthorized("the API key is not valid", "Bearer error=\"invalid_token\"")
        }
    }

    func sessionPrincipal(_ token: String, _ request: Request) async throws -> Principal {
        let session: OperatorStore.Session?
        do { session = try await operators.session(token: token, nowMs: clock()) } catch is RedisError { throw APIError.unavailable }
        guard let session else { throw APIError(.unauthorized, "session_expired", "the session has ended: sign in again (POST /api/v1/session)") }
        if ![.get, .head, .options].contains(request.method) {
            guard let sent = request.headers[OperatorSession.csrfHeader], ConstantTime.equals(sent, session.csrf) else {
                throw APIError(.forbidden, "csrf_failed", "send the session's csrfToken in X-CSRF-Token with every call that changes something")
            }
        }
        return Principal(kind: .operator, id: session.operatorName, role: session.role, grants: session.grants)
    }

    static var disabled: APIError {
        APIError(.forbidden, "admin_disabled", "the admin API is disabled: set SCRM_ADMIN_TOKEN (admin.token) to enable it, or use an API key")
    }

    static func unauthorized(_ message: String, _ challenge: String, code: String = "unauthorized") -> APIError {
        var error = APIError(.unauthorized, code, message)
        error.headers[.wwwAuthenticate] = challenge
        return error
    }
}

/// The names an operator's session travels under.
enum OperatorSession {
    static let cookie = "scrm_session"
    static let csrfHeader = HTTPField.Name("X-CSRF-Token")!
}
