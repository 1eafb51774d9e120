import Campaigns
import Foundation
import GatewayCore
import HTTPAPI
import Hummingbird
import Ingress
import Outbound
import Store

/// `/api/v1/campaigns`: create (draft), list, show with live progress, report, and the lifecycle
/// actions start, pause, resume, cancel.
struct CampaignRoutes {
    let config: GatewayConfig
    let catalog: AdapterCatalog
    let store: CampaignStore
    let runner: CampaignRunner
    let tags: TagStore
    let customers: CustomerStore
    let audiences: AudienceStore
    let clock: @Sendable () -> Int64

    struct PreviewBody: Decodable {
        let campaign: CampaignDefinition
        /// Whom to render for; absent = one customer of the audience, picked at random.
        let customerId: String?
    }

    /// Each variant's content on each channel rendered for one customer, with what they lack.
    struct PreviewAnswer: Encodable {
        /// Nil when the audience is empty and no customer was named: nothing to render for.
        let customerId: String?
        /// Counted only when no member could be drawn cheaply (nil otherwise: counting a large audience
        /// costs a full evaluation; `POST /audiences/preview` counts).
        let audienceSize: Int?
        let variants: [CampaignPreview.Variant]
    }

    func register<Context: RequestContext>(on group: DeclaredRoutes<Context>) {
        group.post("/campaigns", .campaignsWrite) { request, _ in
            try await storage {
                let definition = try await request.decodeJSON(CampaignDefinition.self, maxBytes: max(config.server.maxBodyBytes, 1 << 20))
                let now = clock()
                let compiled = try await compile(definition, now: now)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                let json = String(decoding: try encoder.encode(definition), as: UTF8.self)
                let id = ULID.make(milliseconds: now)
                AuditNote.target(id)
                try await store.create(id: id, definition: definition, json: json, startAt: compiled.startAt, expiresAt: compiled.expiresAt, now: now)
                guard let c = try await store.get(id) else { throw APIError.unavailable }
                return try JSONResponse.encoded(try await view(c), status: .created)
            }
        }
        group.post("/campaigns/preview", .campaignsRead) { request, _ in
            try await storage {
                let body = try await request.decodeJSON(PreviewBody.self, maxBytes: max(config.server.maxBodyBytes, 1 << 20))
                return try JSONResponse.encoded(try await preview(try await compile(body.campaign, now: nil), customerId: body.customerId))
            }
        }
        group.get("/campaigns/:id/preview", .campaignsRead) { request, context in
            try await storage {
                let c = try await campaign(context)
                let customer = request.uri.queryParameters.get("customerId").map { String($0) }
                return try JSONResponse.encoded(try await preview(try await compile(c.definition, now: nil), customerId: customer))
            }
        }
        group.get("/campaigns", .campaignsRead) { request, _ in
            try await storage {
                let query = try PageQuery(request, defaultLimit: 50, maxLimit: 500)
                let page = try await store.list(limit: query.limit, before: query.before)
                var items = [CampaignView]()
                for c in page.campaigns { items.append(try await view(c)) }
                return try JSONResponse.encoded(CampaignList(campaigns: items, next: page.next?.text))
            }
        }
        group.get("/campaigns/:id", .campaignsRead) { _, context in
            try await storage { try JSONResponse.encoded(try await view(try await campaign(context))) }
        }
        group.get("/campaigns/:id/report", .campaignsRead) { _, context in
            try await storage { try JSONResponse.encoded(try await report(try await campaign(context))) }
        }
        for action in ["start", "pause", "resume", "cancel"] {
            group.post("/campaigns/:id/\(action)", .campaignsWrite) { _, context in
                try await storage { try JSONResponse.encoded(try await view(try await act(action, on: try await campaign(context)))) }
            }
        }
    }

    func compile(_ d: CampaignDefinition, now: Int64?) async throws -> CompiledCampaign {
        do {
            // The tags the audience names that exist (an expression that does not parse is refused below).
            let named = (try? TagExpression.parse(d.audience))?.tags ?? []
            return try CompiledCampaign(d, config: config, catalog: catalog, knownTags: try await tags.existing(named), now: now)
        } catch let e as CampaignError {
            throw APIError.badRequest(e.description, code: e.code)
        }
    }

    func preview(_ compiled: CompiledCampaign, customerId: String?) async throws -> PreviewAnswer {
        var size: Int?
        var id = customerId
        if id == nil { id = try await audiences.sampleMember(compiled.audience, nowMs: clock()) }
        if id == nil {
            // No cheap draw: evaluate the audience (its size comes with it).
            let audience = try await audiences.preview(compiled.audience, sample: 1, nowMs: clock())
            (id, size) = (audience.sample.first, audience.count)
        }
        guard let id else { return PreviewAnswer(customerId: nil, audienceSize: size, variants: []) }
        guard ULID.isValid(id), case .found(let c) = try await customers.customer(id: id, nowMs: clock()) else { throw APIError.notFound("customer") }
        return PreviewAnswer(customerId: c.id, audienceSize: size, variants: CampaignPreview(compiled, customerId: c.id, hash: c.fields).variants)
    }

    func campaign(_ context: some RequestContext) async throws -> Campaign {
        guard let c = try await store.get(try context.parameters.require("id")) else { throw APIError.notFound("campaign") }
        return c
    }

    func act(_ action: String, on c: Campaign) async throws -> Campaign {
        let now = clock()
        let result: CampaignStore.Transition
        switch action {
        case "start":
            // Re-check against today's adapters, accounts and tags before anything is sent.
            _ = try await compile(c.definition, now: nil)
            result = try await store.transition(c.id, .schedule, now: now)
            if case .moved(.scheduled) = result, let fresh = try await store.get(c.id), (fresh.startAt ?? 0) <= now {
                _ = try await runner.activate(fresh)
            }
        case "pause": result = try await store.transition(c.id, .pause, now: now)
        case "resume":
            result = try await store.transition(c.id, .resume, now: now)
            if case .moved = result { try await runner.releaseAllParked(c.id) }
        default:
            result = try await store.transition(c.id, .cancel, now: now)
            if case .moved = result { try await runner.releaseAllParked(c.id) }
        }
        switch result {
        case .moved: break
        case .illegal(let from):
            throw APIError(.conflict, "illegal_transition", "cannot \(action) a campaign that is \(from.rawValue)")
        case .notReady, .missing: throw APIError.notFound("campaign")
        }
        guard let fresh = try await store.get(c.id) else { throw APIError.notFound("campaign") }
        return fresh
    }

    func view(_ c: Campaign) async throws -> CampaignView {
        let rate = c.state == .running ? try await store.sendRate(c.id, now: clock()) : 0
        return CampaignView(c, stats: try await store.stats(c.id), ratePerSecond: rate)
    }

    func report(_ c: Campaign) async throws -> CampaignReportView {
        CampaignReportView(
            c, stats: try await store.stats(c.id), massSends: try await MassSendStore(redis: customers.redis).campaignJobs(c.id).map(MassSendRoutes.View.init),
            wecomTasks: try await WeComGroupStore(redis: customers.redis).tasks(c.id).map(WeComTaskView.init))
    }
}
