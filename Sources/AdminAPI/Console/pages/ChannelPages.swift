import Foundation
import GatewayCore
import Hummingbird
import Ingress

/// WeChat surfaces of an account: QR codes per scene (create, the image, the per-scene report,
/// delete), the reply rules and the custom menu (edited as the API's JSON, checked by the API).
extension ConsoleRoutes {
    func registerChannels(on routes: DeclaredRoutes<Context>) {
        page(routes, "/console/channels", section: "channels") { request, context, v in
            let query = ConsolePages.query(request)
            guard let account = config.accounts.first(where: { $0.id == query["account"] }) ?? config.accounts.first else {
                return View(template: "channels", context: ["accounts": [[String: Any]]()])
            }
            let wechat = account.platform == .wechat
            var page: [String: Any] = [
                "account": account.id, "isWeChat": wechat,
                "accounts": config.accounts.map { a in
                    ["id": a.id, "platform": a.platform.rawValue, "href": "/console/channels?account=" + ConsolePages.queryValue(a.id), "current": a.id == account.id]
                },
            ]
            if wechat {
                let report = try await api.get("/api/v1/accounts/\(account.id)/qrcodes", as: request, context: context)
                guard report.ok else { throw ConsoleAPI<Context>.Failed(answer: report) }
                func counts(_ c: JSONValue?) -> [String: String] {
                    ["scans", "subscribes", "unsubscribes", "net"].reduce(into: [:]) { $0[$1] = ConsoleFormat.count(Int(c?.lookup($1)?.scalarText ?? "0") ?? 0) }
                }
                page["scenes"] = (report["scenes"]?.arrayValue ?? []).map { s -> [String: Any] in
                    let scene = s.lookup("scene")?.scalarText ?? ""
                    let source = s.lookup("source")?.scalarText ?? ""
                    return [
                        "scene": scene, "tags": s.lookup("tags")?.arrayValue?.compactMap(\.scalarText) ?? [], "owner": s.lookup("owner")?.scalarText ?? "",
                        "source": source, "fromAPI": source == "api", "sandbox": s.lookup("sandbox") == .bool(true),
                        "permanent": s.lookup("permanent") == .bool(true), "expiresAt": v.time(s.lookup("expiresAt")?.scalarText),
                        "expired": s.lookup("expired") == .bool(true), "image": s.lookup("imageUrl")?.scalarText ?? "", "counts": counts(s.lookup("counts")),
                    ]
                }
                page["totals"] = counts(report["totals"])
                let mass = try await api.get("/api/v1/accounts/\(account.id)/mass-sends", as: request, context: context)
                if mass.ok {
                    let q = mass["quota"]
                    page["massQuota"] = [
                        "used": q?.lookup("used")?.scalarText ?? "0", "limit": q?.lookup("limit")?.scalarText ?? "0", "period": q?.lookup("period")?.scalarText ?? "",
                        "resetsAt": v.time(q?.lookup("resetsAt")?.scalarText),
                    ]
                    page["massSends"] = (mass["massSends"]?.arrayValue ?? []).map { m -> [String: Any] in
                        var row: [String: Any] = [
                            "msgId": m.lookup("msgId")?.scalarText ?? "", "tag": m.lookup("tag")?.scalarText ?? "", "type": m.lookup("type")?.scalarText ?? "",
                            "status": m.lookup("status")?.scalarText ?? "", "createdAt": v.time(m.lookup("createdAt")?.scalarText),
                        ]
                        for k in ["total", "filtered", "sent", "errors"] { row[k] = m.lookup(k)?.scalarText ?? "–" }
                        return row
                    }
                }
                let menu = try await api.get("/api/v1/accounts/\(account.id)/menu", as: request, context: context)
                page["menuJSON"] = menu.ok ? Self.pretty(menu.json) : ""
            }
            let replies = try await api.get("/api/v1/accounts/\(account.id)/replies", as: request, context: context)
            guard replies.ok else { throw ConsoleAPI<Context>.Failed(answer: replies) }
            page["repliesFromConfig"] = replies["source"]?.scalarText == "config"
            page["repliesJSON"] = replies["rules"].map(Self.pretty) ?? "{}"
            page["back"] = "/console/channels?account=" + ConsolePages.queryValue(account.id)
            return View(template: "channels", context: page)
        }
    }
}
