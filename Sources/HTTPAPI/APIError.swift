import GatewayCore
import Hummingbird
import NIOCore

/// An error that renders as `{"error":{"code","message"}}` with its HTTP status. Messages are written
/// for the caller and never carry internals (stack, Redis errors, key material).
public struct APIError: HTTPResponseError, Sendable {
    public let status: HTTPResponse.Status
    public let code: String
    public let message: String
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        let body = (try? JSONResponse.text(ErrorBody(error: .init(code: code, message: message)))) ?? #"{"error":{"code":"internal","message":"error"}}"#
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    public static let unavailable = APIError(.serviceUnavailable, "unavailable", "storage is temporarily unavailable; retry later")
    public static func notFound(_ what: String) -> APIError { APIError(.notFound, "not_found", "\(what) not found") }
    public static func badRequest(_ message: String, code: String = "bad_request") -> APIError { APIError(.badRequest, code, message) }
}

/// `{"error":{"code","message"}}`.
public struct ErrorBody: Encodable, Sendable {
    public struct Detail: Encodable, Sendable {
        public let code: String
        public let message: String
    }

    public let error: Detail
}
