import Foundation
import GatewayCore
import Hummingbird
import Ingress

/// The dashboard: callbacks today by account and type, followers gained and lost, sends by channel,
/// adapter health, CRM sync and waiting dead letters, each with a 24-hour sparkline. The panels are
/// also served alone (`/console/dashboard/panels`) so the page's script can redraw them every few seconds.
extension ConsoleRoutes {
    func registerDashboard(on routes: DeclaredRoutes<Context>) {
        page(routes, "/console", section: "dashboard") { request, context, v in
            View(template: "dashboard", context: try await dashboard(request, context, v))
        }
        page(routes, "/console/dashboard/panels", section: "dashboard") { request, context, v in
            View(template: "dashboard_panels", context: try await dashboard(request, context, v))
        }
    }

    func dashboard(_ request: Request, _ context: Context, _ v: ConsoleVisitor) async throws -> [String: Any] {
        async let statsCall = api.require("/api/v1/stats/activity?hours=48", as: request, context: context)
        async let adaptersCall = api.get("/api/v1/adapters", as: request, context: context)
        async let crmCall = api.get("/api/v1/crm", as: request, context: context)
        let stats = try await statsCall
        // Today: the hours since midnight in the operator's zone; the sparklines: the last 24 hours.
        let hours = (stats["hours"]?.arrayValue ?? []).compactMap { $0.scalarText.flatMap(ConsoleFormat.parseISO) }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = v.timeZone
        let midnight = calendar.startOfDay(for: Date(timeIntervalSince1970: Double(clock()) / 1000))
        let todayFrom = hours.firstIndex { $0 >= midnight } ?? hours.count
        func ints(_ v: JSONValue?) -> [Int] { (v?.arrayValue ?? []).map { Int($0.scalarText ?? "0") ?? 0 } }
        func today(_ s: [Int]) -> Int { s.count == hours.count ? s[todayFrom...].reduce(0, +) : 0 }
        func spark(_ s: [Int], _ title: String) -> String { ConsoleCharts.sparkline(s.suffix(24).map(Double.init), title: title) }

        let inbound = (stats["inbound"]?.arrayValue ?? []).map { row -> [String: Any] in
            let s = ints(row.lookup("counts"))
            let name = "\(row.lookup("account")?.scalarText ?? "") · \(row.lookup("type")?.scalarText ?? "")"
            return ["account": row.lookup("account")?.scalarText ?? "", "type": row.lookup("type")?.scalarText ?? "", "today": ConsoleFormat.count(today(s)),
                    "spark": spark(s, name), "value": today(s)]
        }.sorted { ($0["value"] as? Int ?? 0) > ($1["value"] as? Int ?? 0) }
        let followers = (stats["followers"]?.arrayValue ?? []).map { row -> [String: Any] in
            let gained = ints(row.lookup("gained")), lost = ints(row.lookup("lost"))
            let net = zip(gained, lost).map { $0 - $1 }
            return ["account": row.lookup("account")?.scalarText ?? "", "gained": ConsoleFormat.count(today(gained)), "lost": ConsoleFormat.count(today(lost)),
                    "net": ConsoleFormat.count(today(gained) - today(lost)), "spark": spark(net.map { max(0, $0) }, v.t("followersGained"))]
        }
        let outbound = (stats["outbound"]?.arrayValue ?? []).map { row -> [String: Any] in
            let sent = ints(row.lookup("sent")), delivered = ints(row.lookup("delivered")), failed = ints(row.lookup("failed"))
            return ["channel": row.lookup("channel")?.scalarText ?? "", "sent": ConsoleFormat.count(today(sent)), "delivered": ConsoleFormat.count(today(delivered)),
                    "failed": ConsoleFormat.count(today(failed)), "spark": spark(sent, "\(row.lookup("channel")?.scalarText ?? "") \(v.t("m_sent"))")]
        }
        let adaptersAnswer = try await adaptersCall
        // Douyin accounts' authorizations: when replies stop unless the app is authorized again.
        let authorizations = adaptersAnswer.json.lookup("accessTokens")?.arrayValue?.compactMap { t -> [String: Any]? in
            guard t.lookup("platform")?.scalarText == "douyin", let at = t.lookup("refreshTokenExpiresAt")?.scalarText.flatMap(ConsoleFormat.parseISO) else { return nil }
            let left = at.timeIntervalSince1970 - Double(clock()) / 1000
            return ["account": t.lookup("account")?.scalarText ?? "", "until": ConsoleFormat.local(at, v.timeZone), "soon": left < 7 * 86_400]
        } ?? []
        let adapters = adaptersAnswer.json.lookup("adapters")?.arrayValue?.map { a -> [String: Any] in
            let scopes = a.lookup("scopes")?.arrayValue ?? []
            let now = Date(timeIntervalSince1970: Double(clock()) / 1000)
            func until(_ key: String) -> String? {
                scopes.compactMap { $0.lookup(key)?.scalarText.flatMap(ConsoleFormat.parseISO) }.filter { $0 > now }.max().map { ConsoleFormat.local($0, v.timeZone) }
            }
            let circuit = until("circuitOpenUntil"), suspended = until("suspendedUntil"), paused = until("pausedUntil")
            let factor = scopes.compactMap { $0.lookup("rateFactor")?.scalarText.flatMap(Double.init) }.min() ?? 1
            let state = circuit != nil ? "circuit_open" : suspended != nil ? "suspended" : paused != nil ? "paused" : factor < 1 ? "slowed" : "ok"
            return [
                "name": a.lookup("name")?.scalarText ?? "", "channel": a.lookup("channel")?.scalarText ?? "", "sandbox": a.lookup("sandbox") == .bool(true),
                "rate": a.lookup("rateLimit.perSecond")?.scalarText.map { "\($0)/s" } ?? "–", "factor": String(format: "%.0f%%", factor * 100),
                "state": state, "stateLabel": v.t("health_" + state), "until": circuit ?? suspended ?? paused ?? "",
                "queued": ConsoleFormat.count((Int(a.lookup("queued.bulk")?.scalarText ?? "0") ?? 0) + (Int(a.lookup("queued.transactional")?.scalarText ?? "0") ?? 0)),
            ]
        } ?? []
        let crmAnswer = try await crmCall
        let crm = crmAnswer.ok ? (crmAnswer.json.lookup("adapters")?.arrayValue ?? []).map { c -> [String: Any] in
            [
                "adapter": c.lookup("adapter")?.scalarText ?? "", "waiting": c.lookup("queue.waiting")?.scalarText ?? "0",
                "retrying": c.lookup("queue.retrying")?.scalarText ?? "0", "synced": ConsoleFormat.count(Int(c.lookup("synced")?.scalarText ?? "0") ?? 0),
                "deadLettered": c.lookup("deadLettered")?.scalarText ?? "0", "lastSuccessAt": v.time(c.lookup("lastSuccessAt")?.scalarText),
                "lastError": c.lookup("lastError")?.scalarText ?? "",
                // A CRM with a daily quota (Marketo): its use today; a paused sync: until when.
                "daily": c.lookup("budget.daily.limit").map { _ in
                    "\(c.lookup("budget.daily.used")?.scalarText ?? "0") / \(c.lookup("budget.daily.limit")?.scalarText ?? "0")"
                } ?? "",
                "pausedUntil": v.time(c.lookup("pausedUntil")?.scalarText),
                // A CRM with bulk imports (Eloqua): the newest, how far it is.
                "bulk": c.lookup("bulkImports")?.arrayValue?.first.map { b -> [String: Any] in
                    [
                        "sync": b.lookup("sync")?.scalarText ?? "", "status": b.lookup("status")?.scalarText ?? "",
                        "records": ConsoleFormat.count(Int(b.lookup("records")?.scalarText ?? "0") ?? 0), "polls": b.lookup("polls")?.scalarText ?? "0",
                        "done": b.lookup("finishedAt") != nil, "created": b.lookup("created")?.scalarText ?? "0",
                        "updated": b.lookup("updated")?.scalarText ?? "0", "rejected": b.lookup("rejected")?.scalarText ?? "0",
                    ]
                } ?? false,
            ]
        } : []
        let inboundTotal = inbound.reduce(0) { $0 + ($1["value"] as? Int ?? 0) }
        let allIn = (stats["inbound"]?.arrayValue ?? []).map { ints($0.lookup("counts")) }
        let inboundSeries = (0..<hours.count).map { i in allIn.reduce(0) { $0 + (i < $1.count ? $1[i] : 0) } }
        return [
            "inbound": inbound, "anyInbound": !inbound.isEmpty, "inboundToday": ConsoleFormat.count(inboundTotal),
            "inboundSpark": spark(inboundSeries, v.t("inboundToday")),
            "followers": followers, "anyFollowers": !followers.isEmpty, "outbound": outbound, "anyOutbound": !outbound.isEmpty,
            "adapters": adapters, "authorizations": authorizations, "crm": crm, "anyCRM": !crm.isEmpty,
            "deadLetters": ConsoleFormat.count(Int(stats["deadLetters"]?.scalarText ?? "0") ?? 0),
            "hasDeadLetters": (Int(stats["deadLetters"]?.scalarText ?? "0") ?? 0) > 0,
            "since": ConsoleFormat.local(midnight, v.timeZone),
        ]
    }
}
