import Foundation
import GatewayCore
import Hummingbird
import Ingress

/// Audiences: the expression editor (a count and a sample as the marketer types, errors at their
/// position), and the CSV export of who it selects.
extension ConsoleRoutes {
    func registerAudiences(on routes: DeclaredRoutes<Context>) {
        page(routes, "/console/audiences", section: "audiences") { request, context, v in
            let expr = request.uri.queryParameters.get("expr").map { String($0) } ?? ""
            var page: [String: Any] = ["expr": expr]
            if !expr.trimmingCharacters(in: .whitespaces).isEmpty {
                let body = JSONValue.object(["expression": .string(expr), "sample": .int(10)]).text
                let preview = try await api.call(
                    .post, "/api/v1/audiences/preview", body: Array(body.utf8), contentType: "application/json", csrf: v.session.csrf, as: request, context: context)
                if preview.ok {
                    page["result"] = [
                        "count": ConsoleFormat.count(Int(preview["count"]?.scalarText ?? "0") ?? 0),
                        "sample": preview["sample"]?.arrayValue?.compactMap(\.scalarText) ?? [],
                        "warnings": preview["warnings"]?.arrayValue?.compactMap(\.scalarText) ?? [],
                        "elapsedMs": preview["elapsedMs"]?.scalarText ?? "",
                    ]
                    page["exportHref"] = "/api/v1/audiences/export?expr=" + (expr.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
                } else if preview.status == .badRequest {
                    page["error"] = preview.errorMessage ?? ""
                } else {
                    throw ConsoleAPI<Context>.Failed(answer: preview)
                }
            }
            let tags = try await api.get("/api/v1/tags", as: request, context: context)
            page["tags"] = (tags["tags"]?.arrayValue ?? []).prefix(200).map { t in
                ["name": t.lookup("name")?.scalarText ?? "", "customers": ConsoleFormat.count(Int(t.lookup("customers")?.scalarText ?? "0") ?? 0)]
            }
            return View(template: "audiences", context: page)
        }
    }
}
