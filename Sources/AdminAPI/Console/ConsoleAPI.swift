import GatewayCore
import HTTPTypes
import Hummingbird
import Ingress

/// The console is a client of `/api/v1`, in process: every page reads, and every form writes, through
/// the same routes, permissions, validation and audit as `scrmctl` and the API keys. It forwards the
/// operator's session cookie (and, for a change, the form's CSRF token), so the API decides what the
/// operator may see and do; the console only renders its answers.
struct ConsoleAPI<Context: RequestContext>: Sendable {
    let responder: RouterResponder<Context>

    /// One answer of the API: its status and JSON body, or its `{"error":{code,message}}`.
    struct Answer: Sendable {
        let status: HTTPResponse.Status
        let json: JSONValue
        let location: String?

        var ok: Bool { status.code < 300 }
        var errorCode: String? { ok ? nil : json.lookup("error.code")?.scalarText ?? "error" }
        var errorMessage: String? { ok ? nil : json.lookup("error.message")?.scalarText ?? status.reasonPhrase }
        /// The body for a template (numbers, strings, arrays and dictionaries).
        var value: Any { json.foundationValue ?? [:] as [String: Any] }
        subscript(path: String) -> JSONValue? { json.lookup(path) }
    }

    /// A call that did not succeed, for a page that cannot render without it.
    struct Failed: Error {
        let answer: Answer
    }

    /// `GET` (following the API's 308 from a merged customer to its survivor, once).
    func get(_ path: String, as request: Request, context: Context) async throws -> Answer {
        let first = try await call(.get, path, body: nil, contentType: nil, csrf: nil, as: request, context: context)
        if first.status == .permanentRedirect, let location = first.location, location.hasPrefix("/api/v1/") {
            return try await call(.get, location, body: nil, contentType: nil, csrf: nil, as: request, context: context)
        }
        return first
    }

    /// A `GET` whose failure stops the page (shown as the API's error).
    func require(_ path: String, as request: Request, context: Context) async throws -> Answer {
        let answer = try await get(path, as: request, context: context)
        guard answer.ok else { throw Failed(answer: answer) }
        return answer
    }

    /// Any call, as the operator of `request`. `path` must be under `/api/v1/`.
    func call(
        _ method: HTTPRequest.Method, _ path: String, body: [UInt8]?, contentType: String?, csrf: String?, as request: Request, context: Context
    ) async throws -> Answer {
        precondition(path.hasPrefix("/api/v1/"), "the console calls only the API")
        var headers = HTTPFields()
        for name in [HTTPField.Name.cookie, .acceptLanguage] { if let v = request.headers[name] { headers[name] = v } }
        if let contentType { headers[.contentType] = contentType }
        if let csrf { headers[OperatorSession.csrfHeader] = csrf }
        if let body { headers[.contentLength] = String(body.count) }
        let head = HTTPRequest(method: method, scheme: "http", authority: "console", path: path, headerFields: headers)
        let inner = Request(head: head, body: RequestBody(buffer: ByteBuffer(bytes: body ?? [])))
        let response: Response
        do {
            response = try await responder.respond(to: inner, context: context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: inner, context: context)
        }
        let sink = Collector.Sink()
        try await response.body.write(Collector(sink: sink))
        return Answer(status: response.status, json: JSONValue.parse(sink.bytes.readableBytesView) ?? .null, location: response.headers[.location])
    }

    /// Gathers a response body in memory (the API's answers are small JSON).
    struct Collector: ResponseBodyWriter {
        final class Sink { var bytes = ByteBuffer() }
        let sink: Sink
        mutating func write(_ buffer: ByteBuffer) async throws {
            var buffer = buffer
            sink.bytes.writeBuffer(&buffer)
        }
        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }
}
