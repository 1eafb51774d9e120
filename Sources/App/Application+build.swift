import CRMSync
import AdminAPI
import Foundation
import GatewayCore
import HTTPAPI
import Hummingbird
import Ingress
import Logging
import NIOCore
import Outbound
import RedisClient
import Store

/// Milliseconds since the epoch.
public typealias GatewayClock = @Sendable () -> Int64

public let systemClock: GatewayClock = { Int64(Date().timeIntervalSince1970 * 1000) }

/// Loads and checks every adapter spec, and resolves the adapters the config enables against the
/// environment; throws `AdapterSpecError` (file and key) for anything wrong.
public func loadAdapters(config: GatewayConfig, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> AdapterCatalog {
    try AdapterCatalog.load(directory: config.outbound.adaptersDir, enabled: config.outbound.enabledAdapters, environment: environment)
}

/// Builds the gateway: wiring only. Tests pass their own Redis and clock; the caller owns the pool.
public func buildApplication(
    config: GatewayConfig, redis: RedisPool, adapters: AdapterCatalog, outbound: OutboundParts? = nil, crm: [CRMAdapterSpec] = [], scoring: ScoringRulesSource? = nil,
    listener: Listener = .combined, clock: @escaping GatewayClock = systemClock, logger: Logger = Logger(label: "scrm-gateway"),
    accessLogger: Logger = Logger(label: "access")
) -> some ApplicationProtocol {
    let outbound = outbound ?? makeOutbound(config: config, redis: redis, adapters: adapters, clock: clock)

    let router = buildRouter(
        config: config, redis: redis, adapters: adapters, outbound: outbound, crm: crm, scoring: scoring, table: RouteTable(), listener: listener, clock: clock,
        accessLogger: accessLogger)
    let (host, port) = listener == .admin ? (config.server.adminHost, config.server.adminPort ?? config.server.port) : (config.server.host, config.server.port)
    let requestTimeout = TimeAmount.seconds(Int64(config.server.requestTimeoutSeconds))
    return Application(
        router: router,
        server: .http1(configuration: .init(additionalChannelHandlers: [
            RequestDeadlineHandler(timeout: requestTimeout, streamingPaths: ["/api/v1/customers/import"])
        ])),
        configuration: .init(address: .hostname(host, port: port), serverName: "scrm-gateway"),
        logger: logger
    )
}

/// Which routes a listener serves. With `server.adminPort` set, the gateway runs two: `public` (webhooks,
/// tracked links, unsubscribes: what the internet must reach) and `admin` (/api/v1 and /metrics, on a
/// private interface). Both answer /healthz and /readyz. Without it, one listener serves everything.
public enum Listener: Sendable {
    case combined, `public`, admin

    var servesPublic: Bool { self != .admin }
    var servesAdmin: Bool { self != .public }
}

/// Every route of the gateway (of one listener), each declared in `table` with the permission it needs.
public func buildRouter(
    config: GatewayConfig, redis: RedisPool, adapters: AdapterCatalog, outbound: OutboundParts, crm: [CRMAdapterSpec], scoring: ScoringRulesSource?,
    table: RouteTable, listener: Listener = .combined, clock: @escaping GatewayClock, accessLogger: Logger = Logger(label: "access")
) -> Router<GatewayRequestContext> {
    let registry = Observability.registry()
    let sandbox = SandboxOutbox(redis: redis, maxLen: config.outbound.sandboxMaxLen)
    let customers = CustomerStore(redis: redis, config: config)
    let tags = TagStore(redis: redis)
    let router = Router(context: GatewayRequestContext.self)
    router.add(middleware: AccessLogMiddleware(logger: accessLogger))
    router.add(middleware: MetricsMiddleware())
    router.add(middleware: JSONErrorMiddleware())
    let open = DeclaredRoutes(router, table: table, audit: nil, clock: clock)
    open.get("/healthz", .public) { _, _ in Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{\"status\":\"up\"}"))) }
    open.get("/readyz", .public) { _, _ in
        let nodes = RedisNodes(redis: redis)
        let readiness: Readiness
        do {
            let (ready, masters) = try await nodes.readiness()
            readiness = Readiness(ready: ready, redis: ready ? "up" : "degraded", masters: redis.isCluster ? masters.map { $0 ? "up" : "down" } : nil)
        } catch let error as RedisError where error.kind == .authentication {
            // Reachable, but our credentials are refused (or missing): not something a restart of Redis fixes.
            readiness = Readiness(ready: false, redis: "auth_failed", masters: nil)
        } catch {
            readiness = Readiness(ready: false, redis: "down", masters: nil)
        }
        return try JSONResponse.encoded(readiness, status: readiness.status == "ready" ? .ok : .serviceUnavailable)
    }
    if listener.servesAdmin {
        open.get("/metrics", .public) { _, _ in
            var bytes = [UInt8]()
            registry.emit(into: &bytes)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        AdminRoutes(
            config: config, customers: customers, tags: tags, sandbox: sandbox, adapters: adapters, followers: outbound.followers,
            tokens: outbound.tokens, douyinTokens: outbound.douyinTokens, campaigns: outbound.campaigns, crm: crm, scoring: scoring, activity: outbound.activity,
            surfaces: outbound.surfaces, wechat: outbound.wechat, clock: clock
        ).register(on: router, table: table)
    }
    guard listener.servesPublic else { return router }
    WebhookRoutes(
        config: config, store: customers, surfaces: outbound.surfaces, customReply: makeCustomReplySender(adapters: adapters, redis: redis, clock: clock),
        activity: outbound.activity, clock: clock
    ).register(on: open)
    var verifiers = [String: ReceiptVerifier]()
    var inboundSMS = [String: (token: String, url: String)]()
    for adapter in adapters.adapters.values {
        guard let (format, key) = adapter.receiptKey else { continue }
        let name = adapter.renders.name
        switch format {
        case .twilio:
            verifiers[name] = .twilio(authToken: key, url: "\(config.outbound.publicURL)/webhooks/receipts/\(name)")
            inboundSMS[name] = (key, "\(config.outbound.publicURL)/webhooks/inbound/\(name)")
        case .sendgrid: verifiers[name] = .sendGrid(publicKey: key)
        }
    }
    InboundSMSRoutes(
        verifiers: inboundSMS, customers: customers, maxBodyBytes: config.server.maxBodyBytes, windowSeconds: config.webhooks.timestampWindowSeconds, clock: clock
    ).register(on: open)
    ReceiptRoutes(
        verifiers: verifiers, receipts: ReceiptStore(redis: redis, customers: customers, activity: outbound.activity), formMaxBodyBytes: config.server.maxBodyBytes,
        batchMaxBodyBytes: config.webhooks.receiptMaxBodyBytes, windowSeconds: config.webhooks.timestampWindowSeconds, clock: clock
    ).register(on: open)
    CRMWebhookRoutes(
        inbound: crm.map { CRMInbound(spec: $0, publicURL: config.outbound.publicURL, windowSeconds: config.crm.webhookWindowSeconds) },
        store: CRMInboundStore(redis: redis, timelineCap: config.customers.timelineCap),
        maxBodyBytes: config.webhooks.receiptMaxBodyBytes, windowSeconds: config.crm.webhookWindowSeconds, clock: clock
    ).register(on: open)
    LeadWebhookRoutes(config: config, redis: redis, clock: clock).register(on: open)
    DouyinWebhookRoutes(settings: config.douyin, customers: customers, maxBodyBytes: config.server.maxBodyBytes, clock: clock).register(on: open)
    if let links = UnsubscribeLinks(config.outbound) {
        UnsubscribeRoutes(links: links, store: customers, clock: clock).register(on: open)
    }
    if let tokens = LinkTokens(config.outbound) {
        LinkRoutes(tokens: tokens, store: EngagementStore(redis: redis, config: config), clock: clock).register(on: open)
    }
    return router
}


/// `/readyz`: ready when Redis (every master of a cluster, with every slot served) answers. The
/// masters are listed by state only, in slot order, never by address: the endpoint is public.
struct Readiness: Encodable {
    let status: String
    /// `up`, `degraded` (a cluster with a master down or slots unserved), `down`, `auth_failed`.
    let redis: String
    let masters: [String]?

    init(ready: Bool, redis: String, masters: [String]?) {
        status = ready ? "ready" : "unavailable"
        self.redis = redis
        self.masters = masters
    }
}
