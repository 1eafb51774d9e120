import GatewayCrypto
import Hummingbird
import Ingress

/// `Authorization: Bearer <token>` for /api/v1. No token configured = every call refused: the admin API
/// is never open by default.
struct AdminAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token else {
            throw APIError(.forbidden, "admin_disabled", "the admin API is disabled: set SCRM_ADMIN_TOKEN (admin.token) to enable it")
        }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            var error = APIError(.unauthorized, "unauthorized", "send Authorization: Bearer <admin token>")
            error.headers[.wwwAuthenticate] = "Bearer"
            throw error
        }
        guard ConstantTime.equals(String(header.dropFirst("Bearer ".count)), token) else {
            var error = APIError(.unauthorized, "unauthorized", "the admin token is not valid")
            error.headers[.wwwAuthenticate] = "Bearer error=\"invalid_token\""
            throw error
        }
        return try await next(request, context)
    }
}
