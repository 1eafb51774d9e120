import HTTPAPI
import Hummingbird
import Ingress

/// Renders Hummingbird's own errors (no route matched, a missing path parameter) in the API's
/// `{"error":{"code","message"}}` shape, so every error a caller sees has one form.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            let code = error.status == .notFound ? "not_found" : error.status.code == 405 ? "method_not_allowed" : "bad_request"
            throw APIError(error.status, code, error.status == .notFound ? "no such route" : error.status.reasonPhrase)
        }
    }
}
