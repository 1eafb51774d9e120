import GatewayCore
import Hummingbird
import Ingress
import Outbound

/// `GET /api/v1/sandbox/messages`: what the sandbox adapters would have sent, newest first.
struct SandboxRoutes {
    let outbox: SandboxOutbox

    func register<Context: RequestContext>(on group: RouterGroup<Context>) {
        group.get("/sandbox/messages") { request, _ in
            try await storage {
                let q = request.uri.queryParameters
                var channel: AdapterSpec.Channel?
                if let text = q.get("channel") {
                    guard let c = AdapterSpec.Channel(rawValue: text) else {
                        throw APIError.badRequest("channel must be wechat, sms or email", code: "invalid_channel")
                    }
                    channel = c
                }
                guard let limit = Int(q.get("limit") ?? "50"), (1...500).contains(limit) else {
                    throw APIError.badRequest("limit must be 1...500", code: "invalid_limit")
                }
                let records = try await outbox.list(channel: channel, limit: limit)
                let items = records.map { r in
                    JSONText.object([
                        ("id", JSONText.quote(r.id)), ("channel", JSONText.quote(r.channel)), ("adapter", JSONText.quote(r.adapter)),
                        ("renders", JSONText.quote(r.renders)), ("messageId", JSONText.quote(r.messageId)), ("to", JSONText.quote(r.to)),
                        ("at", JSONResponse.time(r.atMs)), ("request", JSONText.quote(r.request)),
                    ])
                }
                return JSONResponse.ok("{\"messages\":[" + items.joined(separator: ",") + "]}")
            }
        }
    }
}
