import Campaigns
import Foundation
import GatewayCore
import HTTPAPI
import Hummingbird
import Ingress
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
        /// An estimate is enough (the live count as the marketer types): see `AudienceStore.estimate`.
        /// The answer says `estimated` only when it is one (a small anchor set is counted whole).
        let estimate: Bool?
    }

    struct PreviewView: Encodable {
        let expression: String
        let count: Int
        /// The count is estimated from a random draw; `margin` is half its 95% interval.
        let estimated: Bool
        let margin: Int?
        let sample: [String]
        let warnings: [String]
        let elapsedMs: Double
    }

    func register<Context: RequestContext>(on group: DeclaredRoutes<Context>) {
        group.get("/audiences/export", .customersExport) { request, _ in try await storage { try await export(request) } }
        group.post("/audiences/preview", .audiencesRead) { request, _ in
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
                let estimate = body.estimate == true ? try await audiences.estimate(expression, sample: sample) : nil
                let preview = estimate == nil ? try await audiences.preview(expression, sample: sample, nowMs: clock()) : nil
                let ms = (ContinuousClock.now - started).components
                let elapsed = Double(ms.seconds) * 1000 + Double(ms.attoseconds) / 1e15
                var warnings = unknown.map { "unknown tag \($0): no customer has it" }
                if expression.mentionsScore, try await audiences.scoredCustomers() == 0 {
                    warnings.append("no customer has a score yet: every customer counts as score 0")
                }
                let estimated = estimate.map { !$0.isExact } ?? false
                return try JSONResponse.encoded(
                    PreviewView(
                        expression: body.expression, count: estimate?.count ?? preview?.count ?? 0, estimated: estimated,
                        margin: estimated ? estimate?.margin : nil, sample: (estimate?.sample ?? preview?.sample ?? []).sorted(), warnings: warnings,
                        elapsedMs: (elapsed * 10).rounded() / 10))
            }
        }
    }

    /// `GET /audiences/export?expr=...&fields=...`: the customers an expression selects, as CSV streamed
    /// a page at a time (chunked; memory stays bounded however many). Bad input is refused before
    /// the first byte.
    func export(_ request: Request) async throws -> Response {
        let q = request.uri.queryParameters
        guard let text = q.get("expr") else { throw APIError.badRequest("give expr (an audience expression)", code: "invalid_expression") }
        let expression = try Self.parse(String(text))
        do { try CompiledCampaign.checkFields(expression, config: config) } catch let e as CampaignError {
            throw APIError.badRequest(e.reason, code: e.code)
        }
        let fields: [String]
        do { fields = try CustomerExportFields.parse(q.get("fields").map { String($0) }, attributes: config.customers.attributes) } catch let e
            as CustomerAttributes.Invalid
        {
            throw APIError.badRequest(e.description, code: "invalid_fields")
        }
        // The audience is taken before the answer starts, so a Redis failure here is a clean 503.
        let export = try await audiences.export(expression, nowMs: clock())
        let body = ResponseBody { writer in
            var pages = export
            do {
                try await writer.write(ByteBuffer(string: CustomerExportFields.csvLine(fields)))
                while let rows = try await pages.next() {
                    guard !rows.isEmpty else { continue }
                    var text = ""
                    for r in rows {
                        text += CustomerExportFields.csvLine(CustomerExportFields.row(fields, id: r.id, hash: r.hash, identities: r.identities, tags: r.tags))
                    }
                    try await writer.write(ByteBuffer(string: text))
                }
                try await writer.finish(nil)
            } catch {
                await export.close()
                throw error
            }
            await export.close()
        }
        return Response(
            status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"audience.csv\""], body: body)
    }

    static func parse(_ text: String) throws -> TagExpression {
        do {
            return try TagExpression.parse(text)
        } catch let e as TagExpression.ParseError {
            throw APIError.badRequest("expression \(e.description)", code: "invalid_expression")
        }
    }
}
