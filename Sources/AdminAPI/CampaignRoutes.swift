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
                return JSONResponse.ok(try await view(c), status: .created)
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
                var items = [String]()
                for c in page.campaigns { items.append(try await view(c)) }
                return JSONResponse.ok(JSONText.object([("campaigns", "[" + items.joined(separator: ",") + "]")] + (page.next.map { [("next", JSONText.quote($0.text))] } ?? [])))
            }
        }
        group.get("/campaigns/:id", .campaignsRead) { _, context in
            try await storage { JSONResponse.ok(try await view(try await campaign(context))) }
        }
        group.get("/campaigns/:id/report", .campaignsRead) { _, context in
            try await storage { JSONResponse.ok(try await report(try await campaign(context))) }
        }
        for action in ["start", "pause", "resume", "cancel"] {
            group.post("/campaigns/:id/\(action)", .campaignsWrite) { _, context in
                try await storage { JSONResponse.ok(try await view(try await act(action, on: try await campaign(context)))) }
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

    func view(_ c: Campaign) async throws -> String {
        let stats = try await store.stats(c.id)
        let now = clock()
        let rate = c.state == .running ? try await store.sendRate(c.id, now: now) : 0
        let remaining = max(0, (c.audienceSize ?? 0) - stats["planned"]) + max(0, stats["open"])
        let eta = rate > 0 ? String(Int((Double(remaining) / rate).rounded(.up))) : "null"
        let done = stats["sent"] + stats["failed"] + stats["skipped"] + stats["holdout"]
        let percent = (c.audienceSize ?? 0) > 0 ? min(100, Double(done) * 100 / Double(c.audienceSize!)) : (c.state == .completed ? 100 : 0)
        var progress = CampaignStats.metrics.map { ($0, String(stats[$0])) }
        progress += [("percent", String(format: "%.1f", percent)), ("ratePerSecond", String(format: "%.1f", rate)), ("etaSeconds", eta)]
        return JSONText.object([
            ("id", JSONText.quote(c.id)), ("name", JSONText.quote(c.definition.name)), ("state", JSONText.quote(c.state.rawValue)),
            ("audience", JSONText.quote(c.definition.audience)), ("audienceSize", c.audienceSize.map(String.init) ?? "null"),
            ("createdAt", time(c.createdAt)), ("startAt", c.startAt.map(time) ?? "null"), ("expiresAt", c.expiresAt.map(time) ?? "null"),
            ("startedAt", c.startedAt.map(time) ?? "null"), ("endedAt", c.endedAt.map(time) ?? "null"),
            ("progress", JSONText.object(progress)), ("definition", c.definitionJSON),
        ])
    }

    func report(_ c: Campaign) async throws -> String {
        let s = try await store.stats(c.id)
        func group(_ g: [String: [String: Int]]) -> String {
            JSONText.object(g.keys.sorted().map { k in (k, JSONText.object(CampaignStats.metrics.map { ($0, String(g[k]?[$0] ?? 0)) })) })
        }
        func counts(_ d: [String: Int]) -> String { JSONText.object(d.keys.sorted().map { ($0, String(d[$0]!)) }) }
        return JSONText.object([
            ("id", JSONText.quote(c.id)), ("name", JSONText.quote(c.definition.name)), ("state", JSONText.quote(c.state.rawValue)),
            ("audienceSize", c.audienceSize.map(String.init) ?? "null"),
            ("totals", JSONText.object(CampaignStats.metrics.map { ($0, String(s[$0])) })),
            ("variants", group(s.variants)), ("channels", group(s.channels)), ("skipped", counts(s.skipped)), ("failed", counts(s.failed)),
            ("fellBackTo", counts(s.fellBackTo)), ("fellBackReasons", counts(s.fellBackReasons)),
            ("notes", "[" + JSONText.quote("opens are approximate: mail clients that block images are not counted, and privacy proxies open every message") + "]"),
            ("conversions", try ConversionReport(c, stats: s).json),
            // Mass sends made for the campaign, with WeChat's counts once MASSSENDJOBFINISH came.
            ("massSends", String(decoding: try JSONEncoder().encode(try await MassSendStore(redis: customers.redis).campaignJobs(c.id).map(MassSendRoutes.View.init)), as: UTF8.self)),
            // The WeCom channel's group-send tasks (one per owner and 10,000 recipients) and their results.
            ("wecomTasks", String(decoding: try JSONEncoder().encode(try await WeComGroupStore(redis: customers.redis).tasks(c.id).map(WeComTaskView.init)), as: UTF8.self)),
        ])
    }

    func time(_ ms: Int64) -> String {
        let f = ISO8601DateFormatter()
        return JSONText.quote(f.string(from: Date(timeIntervalSince1970: Double(ms) / 1000)))
    }
}
