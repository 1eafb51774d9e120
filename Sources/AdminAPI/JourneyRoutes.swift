import Campaigns
import Foundation
import GatewayCore
import Hummingbird
import Ingress
import Outbound
import Store

/// `/api/v1/journeys`: create (a draft, version 1), list, show, edit (a new version: customers
/// already enrolled finish on theirs), and the lifecycle actions activate, pause, resume, archive.
/// A definition is checked whole before anything is stored; a bad one answers 400 naming the field.
struct JourneyRoutes {
    let config: GatewayConfig
    let catalog: AdapterCatalog
    let store: JourneyStore
    let clock: @Sendable () -> Int64

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

        init(_ j: Journey) {
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

    struct List: Encodable { let journeys: [View] }

    /// An edit names the version it was made on, so two editors cannot overwrite each other.
    struct EditBody: Decodable {
        let baseVersion: Int
        let definition: JourneyDefinition
    }

    func register<Context: RequestContext>(on group: RouterGroup<Context>) {
        group.post("/journeys") { request, _ in
            try await storage {
                let definition = try await request.decodeJSON(JourneyDefinition.self, maxBytes: max(config.server.maxBodyBytes, 1 << 20))
                try check(definition)
                let now = clock()
                let id = CustomerID.make(milliseconds: now)
                try await store.create(id: id, definition: definition, now: now)
                return try JSONResponse.encoded(View(try await journey(id)), status: .created)
            }
        }
        group.get("/journeys") { request, _ in
            try await storage {
                guard let limit = Int(request.uri.queryParameters.get("limit") ?? "50"), (1...500).contains(limit) else {
                    throw APIError.badRequest("limit must be 1...500", code: "invalid_limit")
                }
                return try JSONResponse.encoded(List(journeys: try await store.list(limit: limit).map(View.init)))
            }
        }
        group.get("/journeys/:id") { _, context in
            try await storage { try JSONResponse.encoded(View(try await journey(try context.parameters.require("id")))) }
        }
        group.put("/journeys/:id") { request, context in
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
        group.post("/journeys/:id/activate") { _, context in try await storage { try await act(.activate, context) } }
        group.post("/journeys/:id/pause") { _, context in try await storage { try await act(.pause, context) } }
        group.post("/journeys/:id/resume") { _, context in try await storage { try await act(.resume, context) } }
        group.post("/journeys/:id/archive") { _, context in try await storage { try await act(.archive, context) } }
    }

    func check(_ d: JourneyDefinition) throws {
        do { _ = try CompiledJourney(d, config: config, catalog: catalog) } catch let e as JourneyError {
            throw APIError.badRequest(e.description, code: e.code)
        }
    }

    func journey(_ id: String) async throws -> Journey {
        guard let j = try await store.get(id) else { throw APIError.notFound("journey") }
        return j
    }

    func act(_ action: JourneyStore.Action, _ context: some RequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let current = try await journey(id)
        if action == .activate || action == .resume {
            // Checked again against today's adapters and accounts before it enrols anyone.
            try check(current.definition)
        }
        switch try await store.transition(id, action, now: clock()) {
        case .moved: return try JSONResponse.encoded(View(try await journey(id)))
        case .illegal(let from): throw APIError(.conflict, "illegal_transition", "cannot \(action.rawValue) a journey that is \(from.rawValue)")
        case .missing: throw APIError.notFound("journey")
        }
    }
}
