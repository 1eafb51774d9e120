import Campaigns
import Foundation
import GatewayCore
import HTTPAPI
import Hummingbird
import Ingress
import Store

/// `/api/v1/segments`: saved audiences. `PUT /segments/{name}` creates or replaces one (the
/// expression is checked as a campaign's audience would be), `GET` lists or shows, `DELETE` removes.
/// A segment stores the expression, not its members: it is evaluated wherever it is used.
struct SegmentRoutes {
    let store: SegmentStore
    let config: GatewayConfig
    let clock: @Sendable () -> Int64

    struct PutBody: Decodable {
        let expression: String
        let description: String?
    }

    struct View: Encodable {
        let name: String
        let expression: String
        let description: String?
        let updatedAt: String
        let updatedBy: String

        init(_ s: Segment) {
            name = s.name
            expression = s.expression
            description = s.description
            updatedAt = JSONResponse.isoTime(s.updatedAt)
            updatedBy = s.updatedBy
        }
    }

    struct List: Encodable { let segments: [View] }

    func register<Context: RequestContext>(on group: DeclaredRoutes<Context>) {
        group.get("/segments", .audiencesRead) { _, _ in
            try await storage { try JSONResponse.encoded(List(segments: try await store.list().map(View.init))) }
        }
        group.get("/segments/:name", .audiencesRead) { _, context in
            try await storage {
                guard let s = try await store.get(try context.parameters.require("name")) else { throw APIError.notFound("segment") }
                return try JSONResponse.encoded(View(s))
            }
        }
        group.put("/segments/:name", .audiencesWrite) { request, context in
            try await storage {
                let name = try context.parameters.require("name")
                guard Segment.isValidName(name) else {
                    throw APIError.badRequest("a segment name is 1-64 of a-z, 0-9, '-', '_' and '.', starting with a letter or digit", code: "invalid_name")
                }
                let body = try await request.decodeJSON(PutBody.self, maxBytes: 8192)
                let expression = try AudienceRoutes.parse(body.expression)
                do { try CompiledCampaign.checkFields(expression, config: config) } catch let e as CampaignError {
                    throw APIError.badRequest(e.reason, code: e.code)
                }
                let description = body.description?.trimmingCharacters(in: .whitespacesAndNewlines)
                if let d = description, d.count > 500 { throw APIError.badRequest("description is at most 500 characters", code: "invalid_body") }
                let segment = Segment(
                    name: name, expression: body.expression, description: description?.isEmpty == false ? description : nil, updatedAt: clock(),
                    updatedBy: Principal.current?.actor ?? "")
                switch try await store.put(segment) {
                case .created: return try JSONResponse.encoded(View(segment), status: .created)
                case .replaced: return try JSONResponse.encoded(View(segment))
                case .full: throw APIError(.conflict, "too_many_segments", "at most \(SegmentStore.cap) segments: delete one first")
                }
            }
        }
        group.delete("/segments/:name", .audiencesWrite) { _, context in
            try await storage {
                let name = try context.parameters.require("name")
                guard try await store.delete(name) else { throw APIError.notFound("segment") }
                return Response(status: .noContent)
            }
        }
    }
}
