import GatewayCore
import Hummingbird
import HTTPTypes
import NIOCore
import RedisClient
import Store

/// `GET|HEAD /l/{token}` (a tracked link: 302 to where it goes) and `GET|HEAD /o/{token}.gif` (an
/// email's open pixel). A forged, unknown or expired token gets a plain 404 page. HEAD requests and
/// link scanners are answered the same way but not counted; a repeat within a minute counts once.
public struct LinkRoutes: Sendable {
    let tokens: LinkTokens
    let store: EngagementStore
    let clock: @Sendable () -> Int64

    public init(tokens: LinkTokens, store: EngagementStore, clock: @escaping @Sendable () -> Int64) {
        self.tokens = tokens
        self.store = store
        self.clock = clock
    }

    public func register<Context: RequestContext>(on router: DeclaredRoutes<Context>) {
        for method in [HTTPRequest.Method.get, .head] {
            router.on("/l/:token", method: method, .public) { request, context in
                try await follow(request, token: context.parameters.get("token") ?? "", pixel: false)
            }
            router.on("/o/:token", method: method, .public) { request, context in
                let name = context.parameters.get("token") ?? ""
                guard name.hasSuffix(".gif") else { return Self.notFound }
                return try await follow(request, token: String(name.dropLast(4)), pixel: true)
            }
        }
    }

    func follow(_ request: Request, token: String, pixel: Bool) async throws -> Response {
        guard let (message, index) = tokens.verify(token), (index == LinkTokens.openPixel) == pixel else { return Self.notFound }
        let now = clock()
        let target: EngagementStore.Target?
        do { target = try await store.target(messageId: message, index: index, nowMs: now) } catch is RedisError { return Self.unavailable }
        guard let target else { return Self.notFound }
        if request.method == .get, !LinkScanners.isScanner(userAgent: request.headers[.userAgent]) {
            // The person still gets where they were going when the count cannot be written.
            _ = try? await store.record(target, nowMs: now)
        }
        if let url = target.url {
            return Response(status: .found, headers: [.location: url, .cacheControl: "no-store", Self.referrerPolicy: "no-referrer"])
        }
        return Response(
            status: .ok, headers: [.contentType: "image/gif", .cacheControl: "no-store, private", .contentLength: String(Self.gif.count)],
            body: .init(byteBuffer: ByteBuffer(bytes: Self.gif)))
    }

    static let referrerPolicy = HTTPField.Name("Referrer-Policy")!

    /// A transparent 1x1 GIF.
    static let gif: [UInt8] = [
        0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x21, 0xF9, 0x04, 0x01,
        0x00, 0x00, 0x00, 0x00, 0x2C, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3B,
    ]

    static var notFound: Response {
        Response(
            status: .notFound, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: "<!doctype html><title>Link not found</title><p>This link is not valid, or it has expired.</p>\n")))
    }

    static var unavailable: Response {
        Response(
            status: .serviceUnavailable, headers: [.contentType: "text/html; charset=utf-8", .retryAfter: "5"],
            body: .init(byteBuffer: ByteBuffer(string: "<!doctype html><title>Try again</title><p>Please try again in a moment.</p>\n")))
    }
}
