import Foundation
import GatewayCore
import Hummingbird
import Ingress

/// Imports: upload a CSV (the page's script streams the file to the API with the session's token),
/// a dry run that reports what would be rejected, and each job's progress and rejected lines.
extension ConsoleRoutes {
    func registerImports(on routes: DeclaredRoutes<Context>) {
        page(routes, "/console/imports", section: "imports") { request, context, v in
            let list = try await api.require(ConsolePager.apiPath("/api/v1/imports", limit: 50, request), as: request, context: context)
            let jobs = (list["imports"]?.arrayValue ?? []).map { importRow($0, v) }
            let page: [String: Any] = ["imports": jobs, "any": !jobs.isEmpty]
            return View(template: "imports", context: page.merging(ConsolePager.links(list.json, consolePath: "/console/imports", request)) { a, _ in a })
        }
        page(routes, "/console/imports/:id", section: "imports") { request, context, v in
            let id = Self.segment(context.parameters.get("id") ?? "")
            let job = try await api.require("/api/v1/imports/\(id)", as: request, context: context)
            var page = importRow(job.json, v)
            page["rejections"] = (job["rejections"]?.arrayValue ?? []).prefix(1000).map { r in
                ["line": r.lookup("line")?.scalarText ?? "", "reason": r.lookup("reason")?.scalarText ?? ""]
            }
            page["error"] = job["error"]?.scalarText ?? ""
            return View(template: "import", context: page)
        }
    }

    func importRow(_ j: JSONValue, _ v: ConsoleVisitor) -> [String: Any] {
        let state = j.lookup("state")?.scalarText ?? ""
        var row: [String: Any] = [
            "id": j.lookup("id")?.scalarText ?? "", "state": state, "source": j.lookup("source")?.scalarText ?? "", "format": j.lookup("format")?.scalarText ?? "",
            "percent": j.lookup("percentApplied")?.scalarText ?? "0", "createdAt": v.time(j.lookup("createdAt")?.scalarText),
            "completedAt": v.time(j.lookup("completedAt")?.scalarText), "live": state == "receiving" || state == "applying",
        ]
        for k in ["rowsRead", "valid", "created", "updated", "merged", "rejected", "bytes"] {
            row[k] = ConsoleFormat.count(Int(j.lookup(k)?.scalarText ?? "0") ?? 0)
        }
        return row
    }
}
