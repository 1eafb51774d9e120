import Foundation
import Hummingbird

/// Routes for exercising an HTTP client: echo, chosen status, delay, size, and a cheap JSON success for
/// throughput runs.
public enum TransportRoutes {
    /// A fake server with only these routes.
    public static func start() async throws -> FakeServer {
        let router = Router()
        add(to: router)
        return try await FakeServer.start(router)
    }

    public static func add(to router: Router<BasicRequestContext>) {
        for method in [HTTPRequest.Method.get, .post, .put, .patch, .delete] {
            router.on("/echo", method: method) { request, _ -> Response in
                let body = try await request.body.collect(upTo: 1 << 20)
                var headers: [String: String] = [:]
                for field in request.headers { headers[field.name.canonicalName] = field.value }
                let object: [String: Any] = [
                    "method": request.method.rawValue, "path": request.uri.path, "query": request.uri.query ?? "",
                    "headers": headers, "body": String(buffer: body),
                ]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
            }
        }
        router.get("/status/:code") { _, context -> Response in
            let code = context.parameters.get("code", as: Int.self) ?? 500
            var headers = HTTPFields()
            if code == 429 || code == 503 { headers[.retryAfter] = "2" }
            return Response(status: .init(code: code), headers: headers)
        }
        router.get("/slow/:ms") { _, context -> String in
            try await Task.sleep(for: .milliseconds(context.parameters.get("ms", as: Int.self) ?? 1000))
            return "slow"
        }
        router.get("/bytes/:n") { _, context -> Response in
            let n = min(context.parameters.get("n", as: Int.self) ?? 0, 64 << 20)
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(repeating: UInt8(ascii: "x"), count: n)))
        }
        router.post("/ok") { request, _ -> Response in
            _ = try await request.body.collect(upTo: 1 << 20)
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"errcode":0,"errmsg":"ok"}"#)))
        }
    }
}
