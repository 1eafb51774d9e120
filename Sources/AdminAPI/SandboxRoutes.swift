import GatewayCore
import HTTPAPI
import Hummingbird
import Ingress
import Outbound
import Store

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
                        throw APIError.badRequest("channel must be wechat, sms, email or douyin", code: "invalid_channel")
                    }
                    channel = c
                }
                guard let limit = Int(q.get("limit") ?? "50"), (1...500).contains(limit) else {
                    throw APIError.badRequest("limit must be 1...500", code: "invalid_limit")
                }
                let channels = (channel.map { [$0] } ?? AdapterSpec.Channel.allCases).map(\.rawValue)
                let records = try await outbox.list(channels: channels, limit: limit)
                return try JSONResponse.encoded(SandboxList(messages: records.map(SandboxRecordView.init)))
            }
        }
    }
}

/// `GET /api/v1/adapters`: rate, slow-down, suspension and queue per enabled adapter, and each
/// WeChat account's access-token fetches today against the daily budget.
struct AdapterRoutes {
    let status: AdapterStatus
    let tokens: AccessTokenManager?
    var douyinTokens: AccessTokenManager? = nil

    func register<Context: RequestContext>(on group: DeclaredRoutes<Context>) {
        group.get("/adapters", .operationsRead) { _, _ in
            try await storage {
                var budgets = [AdapterList.TokenBudget]()
                for account in tokens?.accounts ?? [] {
                    budgets.append(
                        .init(account: account, platform: "wechat", fetchesToday: try await tokens?.fetchesToday(account) ?? 0, dailyBudget: tokens?.dailyBudget ?? 0))
                }
                for account in douyinTokens?.accounts ?? [] {
                    budgets.append(
                        .init(
                            account: account, platform: "douyin", fetchesToday: try await douyinTokens?.fetchesToday(account) ?? 0,
                            dailyBudget: douyinTokens?.dailyBudget ?? 0,
                            refreshTokenExpiresAt: try await douyinTokens?.refreshTokenExpiresAt(account).map(JSONResponse.isoTime)))
                }
                return try JSONResponse.encoded(AdapterList(adapters: try await status.reports().map(AdapterList.Adapter.init), accessTokens: budgets))
            }
        }
    }
}

/// `GET /sandbox/messages`: newest first, each with the exact request the provider would have got.
struct SandboxList: Encodable {
    let messages: [SandboxRecordView]
}

struct SandboxRecordView: Encodable {
    let id: String
    let channel: String
    let adapter: String
    let renders: String
    let messageId: String
    let to: String
    let at: String
    let request: String

    init(_ r: SandboxOutbox.Record) {
        (id, channel, adapter, renders, messageId, to) = (r.id, r.channel, r.adapter, r.renders, r.messageId, r.to)
        at = JSONResponse.isoTime(r.atMs)
        request = r.request
    }
}

/// `GET /adapters`.
struct AdapterList: Encodable {
    let adapters: [Adapter]
    let accessTokens: [TokenBudget]

    struct Adapter: Encodable {
        let name: String
        let channel: String
        let renders: String
        let sandbox: Bool
        let queued: Queued
        let rateLimit: RateLimitView?
        let scopes: [Scope]

        init(_ r: AdapterStatus.Report) {
            (name, channel, renders, sandbox) = (r.name, r.channel, r.renders, r.sandbox)
            queued = Queued(bulk: r.queuedBulk, transactional: r.queuedTransactional)
            rateLimit = r.rateLimit.map { RateLimitView(perSecond: $0.limit.perSecond, burst: $0.limit.burst, scope: $0.scope.rawValue) }
            scopes = r.scopes.map { s in
                Scope(
                    scope: s.scope, rateFactor: s.factor, pausedUntil: s.pausedUntilMs.map(JSONResponse.isoTime),
                    suspendedUntil: s.suspendedUntilMs.map(JSONResponse.isoTime), providerFailures: s.failures,
                    circuitOpenUntil: s.circuitOpenUntilMs.map(JSONResponse.isoTime))
            }
        }
    }

    struct Queued: Encodable {
        let bulk: Int
        let transactional: Int
    }

    struct RateLimitView: Encodable {
        let perSecond: Double
        let burst: Int
        let scope: String
    }

    /// One scope of the adapter's limit (the adapter, an account or a sender); times not set are null.
    struct Scope: Encodable {
        let scope: String
        let rateFactor: Double
        @Null var pausedUntil: String?
        @Null var suspendedUntil: String?
        let providerFailures: Int
        @Null var circuitOpenUntil: String?
    }

    struct TokenBudget: Encodable {
        let account: String
        /// wechat or douyin.
        let platform: String
        let fetchesToday: Int
        let dailyBudget: Int
        /// Douyin: when the refresh token in use expires (renewed within 7 days of it, five times per
        /// authorization; then the account must authorize the app again). Absent before the first refresh.
        var refreshTokenExpiresAt: String? = nil
    }
}
