import GatewayCore
import HTTPAPI
import Hummingbird
import Ingress
import Outbound

/// `GET /api/v1/sandbox/messages`: what the sandbox adapters would have sent, newest first.
struct SandboxRoutes {
    let outbox: SandboxOutbox

    func register<Context: RequestContext>(on group: DeclaredRoutes<Context>) {
        group.get("/sandbox/messages", .operationsRead) { request, _ in
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

/// `GET /api/v1/adapters`: rate, slow-down, suspension and queue per enabled adapter, and each
/// WeChat account's access-token fetches today against the daily budget.
struct AdapterRoutes {
    let status: AdapterStatus
    let tokens: AccessTokenManager?

    func register<Context: RequestContext>(on group: DeclaredRoutes<Context>) {
        group.get("/adapters", .operationsRead) { _, _ in
            try await storage {
                let items = try await status.reports().map { r in
                    var pairs: [(String, String)] = [
                        ("name", JSONText.quote(r.name)), ("channel", JSONText.quote(r.channel)), ("renders", JSONText.quote(r.renders)),
                        ("sandbox", r.sandbox ? "true" : "false"),
                        ("queued", JSONText.object([("bulk", String(r.queuedBulk)), ("transactional", String(r.queuedTransactional))])),
                    ]
                    if let rl = r.rateLimit {
                        pairs.append((
                            "rateLimit",
                            JSONText.object([
                                ("perSecond", JSONValue.double(rl.limit.perSecond).text), ("burst", String(rl.limit.burst)),
                                ("scope", JSONText.quote(rl.scope.rawValue)),
                            ])
                        ))
                    }
                    let scopes = r.scopes.map { s in
                        JSONText.object([
                            ("scope", JSONText.quote(s.scope)), ("rateFactor", JSONValue.double(s.factor).text),
                            ("pausedUntil", s.pausedUntilMs.map(JSONResponse.time) ?? "null"),
                            ("suspendedUntil", s.suspendedUntilMs.map(JSONResponse.time) ?? "null"),
                            ("providerFailures", String(s.failures)),
                            ("circuitOpenUntil", s.circuitOpenUntilMs.map(JSONResponse.time) ?? "null"),
                        ])
                    }
                    pairs.append(("scopes", "[" + scopes.joined(separator: ",") + "]"))
                    return JSONText.object(pairs)
                }
                var budgets = [String]()
                for account in tokens?.accounts ?? [] {
                    let used = try await tokens?.fetchesToday(account) ?? 0
                    budgets.append(JSONText.object([
                        ("account", JSONText.quote(account)), ("fetchesToday", String(used)), ("dailyBudget", String(tokens?.dailyBudget ?? 0)),
                    ]))
                }
                return JSONResponse.ok(
                    "{\"adapters\":[" + items.joined(separator: ",") + "],\"accessTokens\":[" + budgets.joined(separator: ",") + "]}")
            }
        }
    }
}
