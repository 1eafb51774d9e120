import Foundation
import GatewayCore
import Hummingbird
import Ingress
import NIOCore
import Store

/// JSON bodies of the admin API, written by hand so stored JSON (timeline entries) is embedded as is.
enum JSONResponse {
    static func ok(_ json: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: json)))
    }

    /// A time as a quoted JSON string (see `isoTime`).
    static func time(_ ms: Int64) -> String { JSONText.quote(isoTime(ms)) }

    /// `2026-12-01T15:04:05.123Z`: how the API writes times.
    static func isoTime(_ ms: Int64) -> String {
        Date(timeIntervalSince1970: Double(ms) / 1000).formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }

}

extension Request {
    /// `keywords[0].match`: where in the body a value was refused.
    static func path(_ keys: [any CodingKey]) -> String {
        keys.reduce(into: "") { out, key in
            if let i = key.intValue { out += "[\(i)]" } else { out += (out.isEmpty ? "" : ".") + key.stringValue }
        }
    }

    /// Decodes a JSON body (capped), with a 400 that says what was wrong.
    func decodeJSON<T: Decodable>(_ type: T.Type, maxBytes: Int) async throws -> T {
        let buffer: ByteBuffer
        do {
            buffer = try await body.collect(upTo: maxBytes)
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "body_too_large", "body exceeds \(maxBytes) bytes")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer: buffer))
        } catch let DecodingError.keyNotFound(key, _) {
            throw APIError.badRequest("missing field \(key.stringValue)", code: "invalid_body")
        } catch let DecodingError.typeMismatch(_, ctx) {
            throw APIError.badRequest("wrong type at \(Self.path(ctx.codingPath))", code: "invalid_body")
        } catch let DecodingError.dataCorrupted(ctx) where !ctx.codingPath.isEmpty {
            // A value the type refuses (an unknown reply type...): say where and why.
            throw APIError.badRequest("\(Self.path(ctx.codingPath)): \(ctx.debugDescription)", code: "invalid_body")
        } catch {
            throw APIError.badRequest("body must be a JSON object as documented", code: "invalid_body")
        }
    }
}

extension JSONValue {
    /// JSON kept in Redis (timeline entries, session messages) as a value to encode; text that is not
    /// JSON stays a string.
    static func stored(_ raw: String) -> JSONValue { JSONValue.parse(Array(raw.utf8)) ?? .string(raw) }
}
