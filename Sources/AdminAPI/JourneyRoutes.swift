import Campaigns
import Foundation
import GatewayCore
import HTTPAPI
import Hummingbird
import Ingress
import Outbound
import RedisClient
import Store

/// `/api/v1/journeys`: create (a draft, version 1), list, show, edit (a new version: customers
/// already enrolled finish on theirs), and the lifecycle actions activate, pause, resume, archive.
/// A definition is checked whole before anything is stored; a bad one answers 400 naming the field.
struct JourneyRoutes {
    let config: GatewayConfig
    let catalog: AdapterCatalog
    let store: JourneyStore
    let redis: RedisPool
    let clock: @Sendable () -> Int64

    var runs: JourneyRunStore { JourneyRunStore(redis: redis) }

    /// What the API answers for a journey.
    struct View: Encodable {
        let id: String
        let name: String
        let state: String
        let version: Int
        let createdAt: String
        let updatedAt: String
        let activatedAt: String?
        let definition: JourneyDefinition
        /// Per step counts (`GET /journeys/{id}` only).
        let report: JourneyReport?

        init(_ j: Journey, report: JourneyReport? = nil) {
            self.report = report
            id = j.id
            name = j.name
            state = j.state.rawValue
            version = j.version
            createdAt = JSONResponse.isoTime(j.createdAt)
            updatedAt = JSONResponse.isoTime(j.updatedAt)
            activatedAt = j.activatedAt.map(JSONResponse.isoTime)
            definition = j.definition
        }
    }

    struct List: Encodable {
        let journeys: [View]
        /// The cursor of the next (older) page, when there is one.
        let next: String?
    }

    /// Every saved version of a journey, newest first (customers finish on the version they entered).
    struct Versions: Encodable {
        let id: String
        let versions: [Version]
    }

    struct Version: Encodable {
        let version: Int
        let current: Bool
        let definition: JourneyDefinition
    }

    /// An edit names the version it was made on, so two editors cannot overwrite each other.
    struct EditBody: Decodable {
        let baseVersion: Int
        let definition: JourneyDefinition
    }

    func register<Context: RequestContext>(on group: DeclaredRoutes<Context>) {
        group.post("/journeys", .journeysWrite) { request, _ in
            try await storage {
                let definition = try await request.decodeJSON(JourneyDefinition.self, maxBytes: max(config.server.maxBodyBytes, 1 << 20))
                try check(definition)
                let now = clock()
                let id = ULID.make(milliseconds: now)
                AuditNote.target(id)
                try await store.create(id: id, definition: definition, now: now)
                return try JSONResponse.encoded(View(try await journey(id)), status: .created)
            }
        }
        group.get("/journeys", .journeysRead) { request, _ in
            try await storage {
                let query = try PageQuery(request, defaultLimit: 50, maxLimit: 500)
                let page = try await store.list(limit: query.limit, before: query.before)
                return try JSONResponse.encoded(List(journeys: page.journeys.map { View($0) }, next: page.next?.text))
            }
        }
        group.get("/journeys/:id", .journeysRead) { _, context in
            try await storage { try JSONResponse.encoded(try await show(try context.parameters.require("id"))) }
        }
        group.get("/journeys/:id/versions", .journeysRead) { _, context in
            try await storage {
                let j = try await journey(try context.parameters.require("id"))
                var versions = [Version]()
                for n in stride(from: j.version, through: 1, by: -1) {
                    if let d = try await store.definition(j.id, version: n) { versions.append(Version(version: n, current: n == j.version, definition: d)) }
                }
                return try JSONResponse.encoded(Versions(id: j.id, versions: versions))
            }
        }
        group.get("/customers/:id/journeys", .journeysRead) { _, context in
            try await storage { try JSONResponse.encoded(try await customerJourneys(try context.parameters.require("id"))) }
        }
        group.put("/journeys/:id", .journeysWrite) { request, context in
            try await storage {
                let id = try context.parameters.require("id")
                _ = try await journey(id)
                let body = try await request.decodeJSON(EditBody.self, maxBytes: max(config.server.maxBodyBytes, 1 << 20))
                try check(body.definition)
                switch try await store.edit(id: id, base: body.baseVersion, definition: body.definition, now: clock()) {
                case .saved: return try JSONResponse.encoded(View(try await journey(id)))
                case .conflict(let current):
                    throw APIError(.conflict, "version_conflict", "version \(current) was saved meanwhile: edit it (baseVersion \(current))")
                case .archived: throw APIError(.conflict, "illegal_transition", "an archived journey cannot be edited")
                case .missing: throw APIError.notFound("journey")
                }
            }
        }
        group.post("/journeys/:id/activate", .journeysWrite) { _, context in try await storage { try await act(.activate, context) } }
        group.post("/journeys/:id/pause", .journeysWrite) { _, context in try await storage { try await act(.pause, context) } }
        group.post("/journeys/:id/resume", .journeysWrite) { _, context in try await storage { try await act(.resume, context) } }
        group.post("/journeys/:id/archive", .journeysWrite) { _, context in try await storage { try await act(.archive, context) } }
    }

    @discardableResult
    func check(_ d: JourneyDefinition) throws -> CompiledJourney {
        do { return try CompiledJourney(d, config: config, catalog: catalog) } catch let e as JourneyError {
            throw APIError.badRequest(e.description, code: e.code)
        }
    }

    func journey(_ id: String) async throws -> Journey {
        guard let j = try await store.get(id) else { throw APIError.notFound("journey") }
        return j
    }

    /// The journey with its report.
    func show(_ id: String) async throws -> View {
        let j = try await journey(id)
        let plan = try JourneyPlan(j.definition, attributes: config.customers.attributes)
        let stats = try await runs.stats(id)
        let toEnrol = j.definition.trigger.audience == nil ? nil : try await store.audienceToEnrol(id)
        return View(j, report: JourneyReport(plan: plan, stats: stats, audienceToEnrol: toEnrol))
    }

    func act(_ action: JourneyStore.Action, _ context: some RequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let current = try await journey(id)
        if action == .activate || action == .resume {
            // Checked again against today's adapters and accounts before it enrols anyone.
            let compiled = try check(current.definition)
            if action == .activate, current.state == .draft, let audience = compiled.audience {
                // The members now: the journey runners enrol them a chunk at a time.
                let n = try await AudienceStore(redis: redis, config: config).snapshot(audience, into: Keys.journeyAudience(id), nowMs: clock())
                try await store.recordAudience(id, size: n)
            }
        }
        switch try await store.transition(id, action, now: clock()) {
        case .moved:
            if action == .archive { try await store.dropAudience(id) }
            return try JSONResponse.encoded(View(try await journey(id)))
        case .illegal(let from): throw APIError(.conflict, "illegal_transition", "cannot \(action.rawValue) a journey that is \(from.rawValue)")
        case .missing: throw APIError.notFound("journey")
        }
    }

    /// `GET /customers/{id}/journeys`.
    func customerJourneys(_ customer: String) async throws -> CustomerJourneysView {
        guard try await CustomerStore(redis: redis, config: config).exists(customer) else {
            throw APIError.notFound("customer")
        }
        var entries = [CustomerJourneysView.Entry]()
        let all = try await store.ids()
        for (jid, e) in try await runs.enrolments(customer: customer, journeys: all).sorted(by: { $0.key < $1.key }) {
            guard let version = e["version"].flatMap({ Int($0) }) else { continue }
            let name = try await store.name(jid)
            let plan = try await store.definition(jid, version: version).flatMap { try? JourneyPlan($0, attributes: config.customers.attributes) }
            let enrolledAt = e["enrolledAt"].flatMap { Int64($0) } ?? 0
            let stepIndex = e["step"].flatMap { Int($0) }
            let stepId = stepIndex.flatMap { i in plan.flatMap { i < $0.nodes.count ? $0.nodes[i].id : nil } }
            let due =
                e["state"] == "active"
                ? try await runs.dueAt(journey: jid, customer: customer).map(JSONResponse.isoTime) : nil
            var history = [CustomerJourneysView.Sent]()
            for node in plan?.nodes ?? [] where node.kind == .send {
                let mid = JourneyRunStore.messageId(journey: jid, version: version, customer: customer, stepId: node.id, enrolledAt: enrolledAt,
                    layout: redis.isCluster ? .perSlot : .single)
                let h = try await MessageStore(redis: redis).fields(mid)
                guard !h.isEmpty else { continue }
                func time(_ k: String) -> String? { h[k].flatMap { Int64($0) }.map(JSONResponse.isoTime) }
                history.append(
                    .init(
                        step: node.id, message: mid, channel: h["channel"], state: h["state"], reason: h["reason"], sentAt: time("sentAt"),
                        deliveredAt: time("deliveredAt"), openedAt: time("openedAt"), clickedAt: time("clickedAt")))
            }
            func time(_ k: String) -> String? { e[k].flatMap { Int64($0) }.map(JSONResponse.isoTime) }
            entries.append(
                .init(
                    journey: jid, name: name, version: version, state: e["state"] ?? "active", step: stepId, dueAt: due, late: e["late"] == "1",
                    enrolledAt: time("enrolledAt"), stepAt: time("stepAt"), exitedAt: time("exitedAt"), exitedOn: e["exitedOn"], history: history))
        }
        return CustomerJourneysView(customer: customer, journeys: entries)
    }
}
