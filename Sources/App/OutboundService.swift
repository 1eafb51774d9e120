import Foundation
import GatewayCore
import Outbound
import RedisClient
import ServiceLifecycle
import Store

/// Builds the outbound engine from the config: adapters, access tokens for accounts with an app
/// secret, signed unsubscribe links.
public func makeOutboundEngine(config: GatewayConfig, redis: RedisPool, adapters: AdapterCatalog, clock: @escaping GatewayClock = systemClock)
    -> OutboundEngine
{
    let o = config.outbound
    let credentials = config.accounts.compactMap { a in
        a.appSecret.map { AccessTokenManager.Credentials(account: a.id, appId: a.appId, secret: $0) }
    }
    // Tokens come from the API host the real WeChat adapters use.
    let wechatBase = adapters.adapters.values.first { $0.needsAccessToken && !$0.spec.isSandbox }?.setting(named: "base_url")
    let tokens = wechatBase.map { AccessTokenManager(redis: redis, baseURL: $0, accounts: credentials, clock: clock) }
    let sender = AdapterSender(
        sandbox: SandboxOutbox(redis: redis, maxLen: o.sandboxMaxLen), tokens: tokens, publicURL: o.publicURL, clock: clock)
    var settings = OutboundEngine.Settings()
    settings.concurrency = o.concurrency
    settings.claimIdleMs = Int64(o.claimIdleSeconds) * 1000
    settings.retry = RetryPolicy(baseMs: o.retryBaseMs, capMs: o.retryCapMs, maxAgeMs: Int64(o.maxAgeHours) * 3_600_000)
    return OutboundEngine(
        redis: redis, catalog: adapters, sender: sender, customers: CustomerStore(redis: redis, config: config),
        links: UnsubscribeLinks(secret: o.linkSecret, publicURL: o.publicURL), settings: settings, clock: clock)
}

/// Runs the senders until graceful shutdown; in-flight provider calls are cancelled with the task
/// (their ledger entries stay `sending` and are reconciled by whichever process takes them over).
public struct OutboundService: Service {
    let engine: OutboundEngine

    public init(engine: OutboundEngine) { self.engine = engine }

    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            try await engine.run()
        }
    }
}
