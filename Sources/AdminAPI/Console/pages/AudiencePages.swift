import Foundation
import GatewayCore
import Hummingbird
import Ingress
import Store

/// Audiences: the expression editor (a count and a sample as the marketer types, errors at their
/// position), and the CSV export of who it selects.
extension ConsoleRoutes {
    func registerAudiences(on routes: DeclaredRoutes<Context>) {
        page(routes, "/console/audiences", section: "audiences") { request, context, v in
            let query = ConsolePages.query(request)
            var expr = query["expr"] ?? ""
            var page: [String: Any] = [:]
            // A saved segment opened from the list: its expression, and its name and description in the save form.
            if let name = query["segment"], Segment.isValidName(name) {
                let segment = try await api.get("/api/v1/segments/\(name)", as: request, context: context)
                if segment.ok {
                    if expr.isEmpty { expr = segment["expression"]?.scalarText ?? "" }
                    page["segmentName"] = name
                    page["segmentDescription"] = segment["description"]?.scalarText ?? ""
                }
            }
            page["expr"] = expr
            if !expr.trimmingCharacters(in: .whitespaces).isEmpty {
                // The page shows an estimate when one is good enough (a million customers count in a few
                // hundred milliseconds, an estimate in a few); the script fetches the exact count after.
                let body = JSONValue.object(["expression": .string(expr), "sample": .int(10), "estimate": .bool(true)]).text
                let preview = try await api.call(
                    .post, "/api/v1/audiences/preview", body: Array(body.utf8), contentType: "application/json", csrf: v.session.csrf, as: request, context: context)
                if preview.ok {
                    page["result"] = [
                        "count": ConsoleFormat.count(Int(preview["count"]?.scalarText ?? "0") ?? 0),
                        "estimated": preview["estimated"] == .bool(true),
                        "margin": preview["margin"]?.scalarText.flatMap { Int($0) }.map(ConsoleFormat.count) ?? "",
                        "sample": preview["sample"]?.arrayValue?.compactMap(\.scalarText) ?? [],
                        "warnings": preview["warnings"]?.arrayValue?.compactMap(\.scalarText) ?? [],
                        "elapsedMs": preview["elapsedMs"]?.scalarText ?? "",
                    ]
                    page["exportHref"] = "/api/v1/audiences/export?expr=" + ConsolePages.queryValue(expr)
                    page["canSave"] = true
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
            let segments = try await api.get("/api/v1/segments", as: request, context: context)
            page["segments"] = (segments["segments"]?.arrayValue ?? []).map { s -> [String: Any] in
                let name = s.lookup("name")?.scalarText ?? "", expression = s.lookup("expression")?.scalarText ?? ""
                return [
                    "name": name, "expression": expression, "description": s.lookup("description")?.scalarText ?? "",
                    "updatedAt": v.time(s.lookup("updatedAt")?.scalarText), "updatedBy": s.lookup("updatedBy")?.scalarText ?? "",
                    "openHref": "/console/audiences?segment=" + ConsolePages.queryValue(name), "campaignHref": "/console/campaigns/new?audience=" + ConsolePages.queryValue(expression),
                ]
            }
            page["hasSegments"] = !((page["segments"] as? [Any])?.isEmpty ?? true)
            page["exprQuery"] = ConsolePages.queryValue(expr)
            return View(template: "audiences", context: page)
        }
    }
}
