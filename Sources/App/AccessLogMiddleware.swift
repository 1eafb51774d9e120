import Hummingbird
import Ingress
import Logging

/// One line per request on the `access` logger: method, the route template (never the raw path, which
/// can hold tokens), status, duration and the caller (key, operator or bootstrap) when there is one.
/// Never a body, a query or a header.
struct AccessLogMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let actor = RequestActor()
        do {
            let response = try await RequestActor.$current.withValue(actor) { try await next(request, context) }
            log(request, context, status: Int(response.status.code), started: started, actor: actor.actor)
            return response
        } catch {
            log(request, context, status: Int((error as? any HTTPResponseError)?.status.code ?? 500), started: started, actor: actor.actor)
            throw error
        }
    }

    func log(_ request: Request, _ context: Context, status: Int, started: ContinuousClock.Instant, actor: String?) {
        let elapsed = (ContinuousClock.now - started).components
        let ms = Double(elapsed.seconds) * 1000 + Double(elapsed.attoseconds) / 1e15
        var metadata: Logger.Metadata = [
            "method": .string(request.method.rawValue), "route": .string(context.endpointPath ?? "unmatched"), "status": .stringConvertible(status),
            "durationMs": .stringConvertible((ms * 100).rounded() / 100),
        ]
        if let actor { metadata["actor"] = .string(actor) }
        logger.info("request", metadata: metadata)
    }
}
