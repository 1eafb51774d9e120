import CRMSync
import Campaigns
import GatewayCore
import Hummingbird
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
    let campaigns: CampaignRunner?
    let crm: [CRMAdapterSpec]
    let scoring: ScoringRulesSource?
    let clock: @Sendable () -> Int64

    public init(
        config: GatewayConfig, customers: CustomerStore, tags: TagStore, sandbox: SandboxOutbox, adapters: AdapterCatalog,
        followers: FollowerSync? = nil, tokens: AccessTokenManager? = nil, campaigns: CampaignRunner? = nil, crm: [CRMAdapterSpec] = [],
        scoring: ScoringRulesSource? = nil, clock: @escaping @Sendable () -> Int64
    ) {
        self.crm = crm
        self.scoring = scoring
        self.campaigns = campaigns
        self.followers = followers
        self.tokens = tokens
        self.config = config
        self.customers = customers
        self.tags = tags
        self.sandbox = sandbox
        self.adapters = adapters
        self.clock = clock
    }

    public func register<Context: RequestContext>(on router: Router<Context>) {
        router.get("/api/v1/openapi.yaml") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.yaml)))
        }
        let group = router.group("/api/v1").add(middleware: AdminAuthMiddleware<Context>(token: config.admin.token))
        CustomerRoutes(store: customers, clock: clock, windowHours: config.sessions.windowHours, maxBodyBytes: config.server.maxBodyBytes)
            .register(on: group)
        ImportRoutes(
            store: CustomerImportStore(redis: sandbox.redis, config: config), attributes: config.customers.attributes,
            accounts: Set(config.accounts.map(\.id)), maxBytes: config.customers.importMaxBytes, clock: clock
        ).register(on: group)
        TagRoutes(tags: tags, maxBulkIds: config.admin.maxBulkIds).register(on: group)
        SandboxRoutes(outbox: sandbox).register(on: group)
        MessageRoutes(config: config, catalog: adapters, store: MessageStore(redis: sandbox.redis), clock: clock).register(on: group)
        AdapterRoutes(status: AdapterStatus(redis: sandbox.redis, catalog: adapters), tokens: tokens).register(on: group)
        FollowerRoutes(config: config, followers: followers).register(on: group)
        AudienceRoutes(audiences: AudienceStore(redis: sandbox.redis, config: config), tags: tags, config: config, clock: clock).register(on: group)
        EventRoutes(
            store: EventStore(redis: sandbox.redis, timelineCap: config.customers.timelineCap, streamMaxLen: config.streams.inboundMaxLen), clock: clock
        ).register(on: group)
        ScoringRoutes(source: scoring).register(on: group)
        CRMRoutes(specs: crm, redis: sandbox.redis, maxBulkIds: config.admin.maxBulkIds).register(on: group)
        JourneyRoutes(config: config, catalog: adapters, store: JourneyStore(redis: sandbox.redis), redis: sandbox.redis, clock: clock).register(on: group)
        if let campaigns {
            CampaignRoutes(config: config, catalog: adapters, store: CampaignStore(redis: sandbox.redis), runner: campaigns, tags: tags, clock: clock)
                .register(on: group)
        }
    }
}
