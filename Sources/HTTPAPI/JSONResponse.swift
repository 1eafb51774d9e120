import Foundation
import GatewayCore
import Hummingbird
import NIOCore

/// JSON bodies of the HTTP APIs: `Encodable` responses (keys sorted), and hand-built text where stored
/// JSON (timeline entries) is embedded as is.
public enum JSONResponse {
    public static func ok(_ json: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: json)))
    }

    /// A time as a quoted JSON string (see `isoTime`).
    public static func time(_ ms: Int64) -> String { JSONText.quote(isoTime(ms)) }

    /// `2026-12-01T15:04:05.123Z`: how the API writes times.
    public static func isoTime(_ ms: Int64) -> String {
        Date(timeIntervalSince1970: Double(ms) / 1000).formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }

    /// An `Encodable` body, keys sorted (stable output for clients and tests).
    public static func encoded(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: try text(value))))
    }

    /// An `Encodable` as JSON text, keys sorted, `/` not escaped (also for sections embedded in hand-built bodies).
    public static func text(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

extension Request {
    /// `keywords[0].match`: where in the body a value was refused.
    public static func path(_ keys: [any CodingKey]) -> String {
        keys.reduce(into: "") { out, key in
            if let i = key.intValue { out += "[\(i)]" } else { out += (out.isEmpty ? "" : ".") + key.stringValue }
        }
    }

    /// Decodes a JSON body (capped), with a 400 that says what was wrong.
    public func decodeJSON<T: Decodable>(_ type: T.Type, maxBytes: Int) async throws -> T {
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

/// An optional member written as `null` when absent (synthesized `Encodable` leaves nil members out):
/// `@Null var endedAt: String?`.
@propertyWrapper
public struct Null<Value: Encodable & Sendable>: Encodable, Sendable {
    public var wrappedValue: Value?

    public init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        if let wrappedValue { try c.encode(wrappedValue) } else { try c.encodeNil() }
    }
}
