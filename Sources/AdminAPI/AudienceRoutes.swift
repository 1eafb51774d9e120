import Foundation
import GatewayCore
import Hummingbird
import Ingress
import Campaigns
import Store

/// `POST /api/v1/audiences/preview`: how many customers a tag expression selects, and a sample.
struct AudienceRoutes {
    let audiences: AudienceStore
    let tags: TagStore
    let config: GatewayConfig
    let clock: @Sendable () -> Int64

    struct PreviewBody: Decodable {
        let expression: String
        let sample: Int?
    }

    func register<Context: RequestContext>(on group: RouterGroup<Context>) {
        group.post("/audiences/preview") { request, _ in
            try await storage {
                let body = try await request.decodeJSON(PreviewBody.self, maxBytes: 8192)
                let expression = try Self.parse(body.expression)
                do { try CompiledCampaign.checkFields(expression, config: config) } catch let e as CampaignError {
                    throw APIError.badRequest(e.reason, code: e.code)
                }
                let sample = body.sample ?? 10
                guard (0...100).contains(sample) else { throw APIError.badRequest("sample must be 0...100", code: "invalid_body") }
                let unknown = expression.tags.subtracting(try await tags.existing(expression.tags)).sorted()
                let started = ContinuousClock.now
                let preview = try await audiences.preview(expression, sample: sample, nowMs: clock())
                let ms = (ContinuousClock.now - started).components
                let elapsed = Double(ms.seconds) * 1000 + Double(ms.attoseconds) / 1e15
                var warnings = unknown.map { JSONText.quote("unknown tag \($0): no customer has it") }
                if expression.mentionsScore, try await audiences.scoredCustomers() == 0 {
                    warnings.append(JSONText.quote("no customer has a score yet: every customer counts as score 0"))
                }
                return JSONResponse.ok(
                    JSONText.object([
                        ("expression", JSONText.quote(body.expression)), ("count", String(preview.count)),
                        ("sample", "[" + preview.sample.sorted().map(JSONText.quote).joined(separator: ",") + "]"),
                        ("warnings", "[" + warnings.joined(separator: ",") + "]"), ("elapsedMs", String(format: "%.1f", elapsed)),
                    ]))
            }
        }
    }

    static func parse(_ text: String) throws -> TagExpression {
        do {
            return try TagExpression.parse(text)
        } catch let e as TagExpression.ParseError {
            throw APIError.badRequest("expression \(e.description)", code: "invalid_expression")
        }
    }
}
