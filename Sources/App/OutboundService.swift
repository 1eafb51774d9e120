import Campaigns
import Foundation
import GatewayCore
import Ingress
import Outbound
import RedisClient
import ServiceLifecycle
import Store

/// The outbound side of one process: the senders, and (when a real WeChat adapter is enabled) the
/// follower sync that shares their access tokens.
public struct OutboundParts: Sendable {
    public let engine: OutboundEngine
    public let followers: FollowerSync?
    public let tokens: AccessTokenManager?
    /// Douyin enterprise accounts' business tokens (accounts with openId and refreshToken).
    public let douyinTokens: AccessTokenManager?
    public let campaigns: CampaignRunner
    let customers: CustomerStore
    /// Applies customer import jobs (any process may resume another's).
    public let imports: CustomerImportRunner
    /// Attributes goal events to the campaigns that reached the customer.
    public let conversions: ConversionWorker
    /// Enrols customers in journeys and runs their due steps.
    public let journeys: JourneyRunner
    /// Hourly counts for the dashboard, flushed to Redis every few seconds.
    public let activity: ActivityStats
    /// QR scenes and reply rules as changed at run time, polled from Redis.
    public let surfaces: SurfaceCache
    /// QR codes and menus: WeChat's API with the shared tokens, or the sandbox without a real WeChat adapter.
    public let wechat: any WeChatSurfaces
    /// New WeCom external contacts fetched, linked by unionid and welcomed (WeCom accounts with a secret).
    public let wecomContacts: WeComContactSync?
    /// Campaigns' WeCom channel: a group-send task per owner, and its results.
    public let wecomGroups: WeComGroupSender?
}

/// Builds the outbound side from the config: adapters, access tokens for accounts with an app
/// secret, signed unsubscribe links.
public func makeOutbound(config: GatewayConfig, redis: RedisPool, adapters: AdapterCatalog, clock: @escaping GatewayClock = systemClock) -> OutboundParts {
    let credentials = config.accounts.filter { $0.platform == .wechat }.compactMap { a in
        a.appSecret.map { AccessTokenManager.Credentials(account: a.id, appId: a.appId, secret: $0) }
    }
    let wecomAccounts = config.accounts.filter { $0.platform == .wecom && !($0.appSecret ?? "").isEmpty }
    // Tokens and the user API live on the host the real WeChat adapters use.
    let wechatBase = adapters.adapters.values.first { $0.needsAccessToken && !$0.spec.isSandbox }?.setting(named: "base_url")
    let tokens = wechatBase.map { AccessTokenManager(redis: redis, baseURL: $0, accounts: credentials, clock: clock) }
    let customers = CustomerStore(redis: redis, config: config)
    var followers: FollowerSync?
    if let tokens, let wechatBase, !credentials.isEmpty {
        followers = FollowerSync(
            redis: redis, customers: customers, api: WeChatUserAPI(tokens: tokens, baseURL: wechatBase), accounts: Set(credentials.map(\.account)),
            clock: clock)
    }
    let compile: @Sendable (Campaign) throws -> CompiledCampaign = {
        try CompiledCampaign($0.definition, config: config, catalog: adapters, knownTags: nil, now: nil)
    }
    let campaigns = CampaignRunner(redis: redis, audiences: AudienceStore(redis: redis, config: config), compile: compile, clock: clock)
    let renderer = CampaignRenderer(redis: redis, customers: customers, compile: compile)
    let activity = ActivityStats(redis: redis)
    var wecomContacts: WeComContactSync?
    var wecomGroups: WeComGroupSender?
    if !wecomAccounts.isEmpty {
        let wecomTokens = AccessTokenManager(
            redis: redis, baseURL: config.outbound.wecomApiBase,
            accounts: wecomAccounts.map { AccessTokenManager.Credentials(account: $0.id, appId: $0.appId, secret: $0.appSecret ?? "") }, flavor: .wecom,
            clock: clock)
        let api = WeComContactAPI(tokens: wecomTokens, baseURL: config.outbound.wecomApiBase)
        wecomContacts = WeComContactSync(redis: redis, customers: customers, api: api, accounts: wecomAccounts, clock: clock)
        wecomGroups = WeComGroupSender(redis: redis, api: api, compile: compile, clock: clock)
    }
    let wechat: any WeChatSurfaces =
        if let tokens, let wechatBase { WeChatSurfaceAPI(client: WeChatAPIClient(tokens: tokens, baseURL: wechatBase)) } else { SandboxWeChatSurfaces() }
    let douyinTokens = makeDouyinTokens(config: config, redis: redis, adapters: adapters, clock: clock)
    return OutboundParts(
        engine: makeOutboundEngine(
            config: config, redis: redis, adapters: adapters, tokens: tokens, douyinTokens: douyinTokens, customers: customers, campaigns: renderer,
            activity: activity, clock: clock),
        followers: followers, tokens: tokens, douyinTokens: douyinTokens, campaigns: campaigns, customers: customers,
        imports: CustomerImportRunner(store: CustomerImportStore(redis: redis, config: config), clock: clock),
        conversions: ConversionWorker(redis: redis),
        journeys: JourneyRunner(redis: redis, config: config, customers: customers, compile: { try CompiledJourney($0, config: config, catalog: adapters) },
            leaseMs: Int64(config.outbound.journeyLeaseSeconds) * 1000, clock: clock),
        activity: activity, surfaces: SurfaceCache(config: config, store: SurfaceStore(redis: redis)), wechat: wechat, wecomContacts: wecomContacts,
        wecomGroups: wecomGroups)
}

/// Douyin enterprise accounts' business tokens, refreshed on the host the douyin-im adapter calls; nil
/// when no account can reply or no real douyin-im adapter is enabled.
func makeDouyinTokens(config: GatewayConfig, redis: RedisPool, adapters: AdapterCatalog, clock: @escaping GatewayClock) -> AccessTokenManager? {
    let accounts = config.douyin.accounts.filter(\.canReply)
    guard !accounts.isEmpty, let base = adapters.adapters.values.first(where: { $0.accessTokenKind == .douyin && !$0.spec.isSandbox })?.setting(named: "base_url")
    else { return nil }
    return AccessTokenManager(
        redis: redis, baseURL: base, accounts: accounts.map { AccessTokenManager.Credentials(account: $0.id, appId: $0.clientKey, secret: $0.refreshToken) },
        flavor: .douyin, clock: clock)
}

func makeOutboundEngine(
    config: GatewayConfig, redis: RedisPool, adapters: AdapterCatalog, tokens: AccessTokenManager?, douyinTokens: AccessTokenManager? = nil,
    customers: CustomerStore, campaigns: (any CampaignRendering)? = nil, activity: ActivityStats? = nil, clock: @escaping GatewayClock
) -> OutboundEngine {
    let o = config.outbound
    let sender = AdapterSender(
        sandbox: SandboxOutbox(redis: redis, maxLen: o.sandboxMaxLen), tokens: tokens, douyinTokens: douyinTokens, publicURL: o.publicURL, clock: clock)
    var settings = OutboundEngine.Settings()
    settings.concurrency = o.concurrency
    settings.claimIdleMs = Int64(o.claimIdleSeconds) * 1000
    settings.retry = RetryPolicy(baseMs: o.retryBaseMs, capMs: o.retryCapMs, maxAgeMs: Int64(o.maxAgeHours) * 3_600_000)
    settings.circuit = RateLimiter.Circuit(failures: o.circuitFailures, openMs: o.circuitOpenMs, maxOpenMs: o.circuitMaxOpenMs)
    settings.contactRules = config.contactRules
    settings.accountTimezones = Dictionary(uniqueKeysWithValues: config.accounts.compactMap { a in a.timezone.map { (a.id, $0) } })
    settings.douyinOpenIds = Dictionary(uniqueKeysWithValues: config.douyin.accounts.filter(\.canReply).map { ($0.id, $0.openId) })
    return OutboundEngine(
        redis: redis, catalog: adapters, sender: sender, customers: customers,
        links: UnsubscribeLinks(o), settings: settings, campaigns: campaigns, activity: activity, clock: clock)
}

/// Runs the senders, the campaign runner, the import runner and the follower profile fetcher until graceful shutdown; in-flight provider
/// calls are cancelled with the task (their ledger entries stay `sending` and are reconciled by
/// whichever process takes them over).
public struct OutboundService: Service {
    let parts: OutboundParts

    public init(parts: OutboundParts) { self.parts = parts }

    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await parts.engine.run() }
                group.addTask { await parts.campaigns.run() }
                group.addTask { try? await parts.customers.prepareIndexes() }
                group.addTask { try? await parts.customers.migrateOptOuts() }
                group.addTask { await parts.imports.run() }
                group.addTask { await parts.conversions.run() }
                group.addTask { await parts.journeys.run() }
                group.addTask { await parts.activity.run() }
                group.addTask { await parts.surfaces.run() }
                if let wecom = parts.wecomContacts { group.addTask { await wecom.run() } }
                if let groups = parts.wecomGroups { group.addTask { await groups.run() } }
                if let followers = parts.followers { group.addTask { await followers.runEnrichment() } }
                try await group.waitForAll()
            }
        }
    }
}

/// Queues replies WeChat takes only as customer-service messages (mini-program cards) on the enabled
/// adapter that renders `wechat-custom` (the sandbox's in the demo): transactional, to the follower's
/// openid, once per callback (the key). nil when no such adapter is enabled.
func makeCustomReplySender(adapters: AdapterCatalog, redis: RedisPool, clock: @escaping GatewayClock) -> CustomReplySender? {
    guard let adapter = adapters.adapters.values.sorted(by: { $0.spec.name < $1.spec.name }).first(where: { $0.renders.name == "wechat-custom" }) else {
        return nil
    }
    let store = MessageStore(redis: redis)
    let name = adapter.spec.name
    return { account, openid, content, key in
        let now = clock()
        var message = OutboundMessage(
            id: store.newId(now: now, recipient: Keys.contactSubject(channel: "wechat", address: openid)), channel: "wechat", adapter: name, lane: .transactional, idempotencyKey: key, customerId: nil,
            to: openid, account: account, template: nil, subject: nil, text: nil, html: nil, link: nil, variables: "{}", createdAt: now)
        message.content = content.customServiceJSON.text
        _ = try await store.accept(message)
    }
}
