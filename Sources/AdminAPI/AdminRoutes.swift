import CRMSync
import Campaigns
import GatewayCore
import Hummingbird
import Ingress
import Outbound
import Store

/// The marketer-facing REST API under `/api/v1`, behind the admin token.
public struct AdminRoutes: Sendable {
    let config: GatewayConfig
    let customers: CustomerStore
    let tags: TagStore
    let sandbox: SandboxOutbox
    let adapters: AdapterCatalog
    let followers: FollowerSync?
    let tokens: AccessTokenManager?
    let douyinTokens: AccessTokenManager?
    let campaigns: CampaignRunner?
    let crm: [CRMAdapterSpec]
    let scoring: ScoringRulesSource?
    let activity: ActivityStats?
    let surfaces: SurfaceCache?
    let wechat: any WeChatSurfaces
    let clock: @Sendable () -> Int64

    public init(
        config: GatewayConfig, customers: CustomerStore, tags: TagStore, sandbox: SandboxOutbox, adapters: AdapterCatalog,
        followers: FollowerSync? = nil, tokens: AccessTokenManager? = nil, douyinTokens: AccessTokenManager? = nil, campaigns: CampaignRunner? = nil,
        crm: [CRMAdapterSpec] = [],
        scoring: ScoringRulesSource? = nil, activity: ActivityStats? = nil, surfaces: SurfaceCache? = nil,
        wechat: any WeChatSurfaces = SandboxWeChatSurfaces(), clock: @escaping @Sendable () -> Int64
    ) {
        self.surfaces = surfaces
        self.wechat = wechat
        self.activity = activity
        self.crm = crm
        self.scoring = scoring
        self.campaigns = campaigns
        self.followers = followers
        self.tokens = tokens
        self.douyinTokens = douyinTokens
        self.config = config
        self.customers = customers
        self.tags = tags
        self.sandbox = sandbox
        self.adapters = adapters
        self.clock = clock
    }

    static func policy(_ admin: GatewayConfig.Admin) -> OperatorStore.Policy {
        var p = OperatorStore.Policy()
        p.sessionIdleMs = Int64(admin.sessionIdleMinutes) * 60_000
        p.sessionMaxMs = Int64(admin.sessionMaxHours) * 3_600_000
        p.maxFailures = admin.loginMaxFailures
        p.lockoutMs = Int64(admin.loginLockoutMinutes) * 60_000
        p.attemptsPerMinute = admin.loginAttemptsPerMinute
        return p
    }

    /// Adds `/api/v1` to the router; every route is declared in `table` with its permission.
    public func register<Context: RequestContext>(on router: Router<Context>, table: RouteTable) {
        DeclaredRoutes(router, table: table, audit: nil, clock: clock).get("/api/v1/openapi.yaml", .public) { _, _ in
            Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.yaml)))
        }
        let keys = APIKeyStore(redis: sandbox.redis)
        let audit = AuditLog(redis: sandbox.redis, retentionDays: config.admin.auditRetentionDays)
        let operators = OperatorStore(redis: sandbox.redis, policy: Self.policy(config.admin))
        let operatorRoutes = OperatorRoutes(operators: operators, audit: audit, config: config, clock: clock)
        operatorRoutes.registerSignIn(on: DeclaredRoutes(router, table: table, audit: nil, clock: clock))
        let group = DeclaredRoutes(
            router.group("/api/v1").add(middleware: AdminAuthMiddleware<Context>(bootstrapToken: config.admin.token, keys: keys, operators: operators, clock: clock)),
            prefix: "/api/v1", table: table, audit: audit, clock: clock)
        AccessRoutes(keys: keys, audit: audit, clock: clock).register(on: group)
        operatorRoutes.register(on: group)
        // A Douyin account's reply window is the douyin channel adapter's (24 h), not WeChat's.
        let douyinWindow = config.outbound.channels["douyin"].flatMap { adapters[$0] }?.renders.sessionWindowHours
        CustomerRoutes(
            store: customers, messages: MessageStore(redis: sandbox.redis), clock: clock, windowHours: config.sessions.windowHours,
            accountWindowHours: Dictionary(uniqueKeysWithValues: douyinWindow.map { w in config.douyin.accounts.map { ($0.id, w) } } ?? []),
            maxBodyBytes: config.server.maxBodyBytes
        ).register(on: group)
        ImportRoutes(
            store: CustomerImportStore(redis: sandbox.redis, config: config), attributes: config.customers.attributes,
            accounts: Set(config.accounts.map(\.id)), maxBytes: config.customers.importMaxBytes, clock: clock
        ).register(on: group)
        TagRoutes(tags: tags, maxBulkIds: config.admin.maxBulkIds).register(on: group)
        SandboxRoutes(outbox: sandbox).register(on: group)
        RedisRoutes(nodes: RedisNodes(redis: sandbox.redis)).register(on: group)
        MessageRoutes(config: config, catalog: adapters, store: MessageStore(redis: sandbox.redis), clock: clock).register(on: group)
        AdapterRoutes(status: AdapterStatus(redis: sandbox.redis, catalog: adapters, accounts: config.accounts.map(\.id)), tokens: tokens, douyinTokens: douyinTokens)
            .register(on: group)
        FollowerRoutes(config: config, followers: followers).register(on: group)
        AudienceRoutes(audiences: AudienceStore(redis: sandbox.redis, config: config), tags: tags, config: config, clock: clock).register(on: group)
        SegmentRoutes(store: SegmentStore(redis: sandbox.redis), config: config, clock: clock).register(on: group)
        let surfaceStore = SurfaceStore(redis: sandbox.redis)
        QRCodeRoutes(config: config, store: surfaceStore, wechat: wechat, cache: surfaces, clock: clock).register(on: group)
        ReplyRoutes(config: config, store: surfaceStore, cache: surfaces).register(on: group)
        MenuRoutes(config: config, store: surfaceStore, wechat: wechat).register(on: group)
        MediaRoutes(config: config, store: surfaceStore, wechat: wechat, clock: clock).register(on: group)
        MassSendRoutes(
            config: config, store: MassSendStore(redis: sandbox.redis), campaigns: CampaignStoreLookup(store: CampaignStore(redis: sandbox.redis)), wechat: wechat,
            clock: clock
        ).register(on: group)
        EventRoutes(
            store: EventStore(redis: sandbox.redis, config: config), clock: clock
        ).register(on: group)
        MergeCandidateRoutes(store: MergeCandidateStore(redis: sandbox.redis, customers: customers), clock: clock).register(on: group)
        PrivacyRoutes(
            customers: customers, erasure: CustomerErasure(redis: sandbox.redis, config: config, crmAdapters: crm.map(\.name), clock: clock),
            crmAdapters: crm.map(\.name), clock: clock
        ).register(on: group)
        ScoringRoutes(source: scoring).register(on: group)
        StatsRoutes(activity: activity ?? ActivityStats(redis: sandbox.redis), redis: sandbox.redis, clock: clock).register(on: group)
        CRMRoutes(specs: crm, redis: sandbox.redis, maxBulkIds: config.admin.maxBulkIds).register(on: group)
        JourneyRoutes(config: config, catalog: adapters, store: JourneyStore(redis: sandbox.redis), redis: sandbox.redis, clock: clock).register(on: group)
        if let campaigns {
            CampaignRoutes(
                config: config, catalog: adapters, store: CampaignStore(redis: sandbox.redis), runner: campaigns, tags: tags, customers: customers,
                audiences: AudienceStore(redis: sandbox.redis, config: config), clock: clock
            )
                .register(on: group)
        }
        // The console reads and writes through the routes above, in process: built after them.
        ConsoleRoutes(operators: operators, api: ConsoleAPI(responder: router.buildResponder()), config: config, clock: clock)
            .register(on: DeclaredRoutes(router, table: table, audit: nil, clock: clock))
    }
}
