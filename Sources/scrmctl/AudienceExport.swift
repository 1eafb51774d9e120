import ArgumentParser
import Foundation
import HTTPTransport

extension Audience {
    /// `scrmctl audience export "vip & profile.spend>=1000" --fields id,email,profile.city --out vip.csv`
    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the customers an expression selects to a CSV file (GET /api/v1/audiences/export).",
            discussion: "Columns: id, phone, email, unionid, external_id, openid, tags, score, stage, tier, consent.sms, consent.email, createdAt, lastSeenAt, timezone, profile.<attribute>; default id, phone, email, tags and every profile attribute.")
        @Argument(help: "An audience expression.") var expression: String
        @Option(help: "Comma-separated columns.") var fields: String?
        @Option(help: "The CSV file to write.") var out: String
        @OptionGroup var gateway: GatewayOptions

        func run() async throws {
            var path = "/api/v1/audiences/export?expr=\(queryValue(expression))"
            if let fields { path += "&fields=\(queryValue(fields))" }
            var headers = [("Accept", "text/csv")]
            if let t = gateway.adminToken { headers.append(("Authorization", "Bearer \(t)")) }
            let response = try await gateway.send(HTTPRequest(method: "GET", url: gateway.baseURL + path, headers: headers, body: []))
            guard response.status == 200 else {
                let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any]
                throw ValidationError("HTTP \(response.status): \((object?["error"] as? [String: Any])?["message"] as? String ?? response.text)")
            }
            guard FileManager.default.createFile(atPath: out, contents: Data(response.body)) else { throw ValidationError("cannot write \(out)") }
            let rows = response.body.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) } - 1
            print("wrote \(max(rows, 0)) customers to \(out)")
        }
    }
}
