import Foundation
import GatewayCore
import Hummingbird
import Ingress

/// Campaigns: the list with live progress, the form (with each variant's content previewed for a
/// sample customer, missing variables flagged), and one campaign: its lifecycle buttons by role and
/// state, a live progress bar with rate and ETA, and the report (per-variant charts, conversions,
/// lift against the hold-out with its interval, the winner).
extension ConsoleRoutes {
    static var campaignMetrics: [String] { ["sent", "delivered", "opened", "clicked", "failed", "skipped"] }

    func registerCampaigns(on routes: DeclaredRoutes<Context>) {
        page(routes, "/console/campaigns", section: "campaigns") { request, context, v in
            let list = try await api.require(ConsolePager.apiPath("/api/v1/campaigns", limit: 50, request), as: request, context: context)
            let rows = (list["campaigns"]?.arrayValue ?? []).map { c in campaignRow(c, v) }
            let page: [String: Any] = ["campaigns": rows, "any": !rows.isEmpty]
            return View(template: "campaigns", context: page.merging(ConsolePager.links(list.json, consolePath: "/console/campaigns", request)) { a, _ in a })
        }
        page(routes, "/console/campaigns/new", section: "campaigns") { request, _, v in
            // `?audience=` starts the form on an audience (a saved segment's "campaign to it").
            let audience = ConsolePages.query(request)["audience"].map { String($0.prefix(4096)) }
            return View(template: "campaign-new", context: campaignForm(audience.map { ["audience": $0] } ?? [:], on: ["channels[0]"], v))
        }
        page(routes, "/console/campaigns/new", method: .post, section: "campaigns") { request, context, v in
            let pairs = FormEncoding.pairs(String(buffer: try await request.body.collect(upTo: config.server.maxBodyBytes)))
            let form = FormEncoding.fields(pairs)
            var page = campaignForm(form, on: Set(pairs.filter { $0.name == "_on" }.map(\.value)), v)
            do {
                let definition = try ConsoleFormBody.json(pairs, timeZone: v.timeZone)
                let body = JSONValue.object(["campaign": definition]).text
                let preview = try await api.call(
                    .post, "/api/v1/campaigns/preview", body: Array(body.utf8), contentType: "application/json", csrf: form["csrf"] ?? "", as: request,
                    context: context)
                if preview.ok { page["preview"] = previewContext(preview.json) } else { page["error"] = preview.errorMessage ?? "" }
            } catch let e as ConsoleFormBody.Invalid {
                page["error"] = e.message
            }
            return View(template: "campaign-new", context: page)
        }
        page(routes, "/console/campaigns/:id", section: "campaigns") { request, context, v in
            let id = Self.segment(context.parameters.get("id") ?? "")
            let campaign = try await api.require("/api/v1/campaigns/\(id)", as: request, context: context)
            async let report = api.get("/api/v1/campaigns/\(id)/report", as: request, context: context)
            async let preview = api.get("/api/v1/campaigns/\(id)/preview", as: request, context: context)
            var page = campaignRow(campaign.json, v)
            let state = campaign["state"]?.scalarText ?? ""
            page["canStart"] = state == "draft"
            page["canPause"] = state == "running" || state == "scheduled"
            page["canResume"] = state == "paused"
            page["canCancel"] = ["draft", "scheduled", "running", "paused"].contains(state)
            page["live"] = ["scheduled", "running"].contains(state)
            page["definition"] = campaign["definition"].map(Self.pretty) ?? ""
            page["counters"] = (["planned", "queued"] + Self.campaignMetrics + ["holdout", "fellBack"]).map { m in
                ["metric": m, "label": v.t("m_" + m), "value": ConsoleFormat.count(Int(campaign.json.lookup("progress.\(m)")?.scalarText ?? "0") ?? 0)]
            }
            let reported = try await report
            if reported.ok { page["report"] = reportContext(reported.json, v) }
            let previewed = try await preview
            if previewed.ok { page["preview"] = previewContext(previewed.json) }
            return View(template: "campaign", context: page)
        }
    }

    func campaignRow(_ c: JSONValue, _ v: ConsoleVisitor) -> [String: Any] {
        let percent = Double(c.lookup("progress.percent")?.scalarText ?? "0") ?? 0
        let eta = c.lookup("progress.etaSeconds")?.scalarText.flatMap(Int.init)
        return [
            "id": c.lookup("id")?.scalarText ?? "", "name": c.lookup("name")?.scalarText ?? "", "state": c.lookup("state")?.scalarText ?? "",
            "audience": c.lookup("audience")?.scalarText ?? "", "audienceSize": c.lookup("audienceSize")?.scalarText.flatMap(Int.init).map(ConsoleFormat.count) ?? "",
            "percent": String(format: "%.1f", percent), "rate": c.lookup("progress.ratePerSecond")?.scalarText ?? "0",
            "eta": eta.map(ConsoleFormat.duration) ?? "", "createdAt": v.time(c.lookup("createdAt")?.scalarText),
            "startAt": v.time(c.lookup("startAt")?.scalarText), "startedAt": v.time(c.lookup("startedAt")?.scalarText), "endedAt": v.time(c.lookup("endedAt")?.scalarText),
        ]
    }

    /// The form's fields as they were typed (a preview keeps them), and its choices.
    func campaignForm(_ f: [String: String], on: Set<String>, _ v: ConsoleVisitor) -> [String: Any] {
        var page: [String: Any] = [:]
        for (key, field) in [
            ("name", "name"), ("audience", "audience"), ("smsText", "channels[0].text"), ("emailSubject", "channels[1].subject"),
            ("emailHTML", "channels[1].html"), ("emailText", "channels[1].text"), ("wechatTemplate", "channels[2].template"),
            ("wechatData", "channels[2].data:json"), ("wechatLink", "channels[2].link"), ("variantA", "variants[0].name"),
            ("weightA", "variants[0].weight:int"), ("variantB", "variants[1].name"), ("weightB", "variants[1].weight:int"),
            ("smsTextB", "variants[1].content.sms.text"), ("emailSubjectB", "variants[1].content.email.subject"), ("holdout", "holdoutPercent:num"),
            ("startAt", "startAt:local"), ("expiresAt", "expiresAt:local"), ("rate", "ratePerSecond:num"), ("goalEvent", "goal.event"),
            ("goalHours", "goal.withinHours:int"), ("wecomText", "channels[3].text"), ("wecomAttachments", "channels[3].attachments:json"),
        ] {
            page[key] = f[field] ?? ""
        }
        page["smsOn"] = on.contains("channels[0]")
        page["emailOn"] = on.contains("channels[1]")
        page["wechatOn"] = on.contains("channels[2]")
        page["wecomOn"] = on.contains("channels[3]")
        let wecom = config.accounts.filter { $0.platform == .wecom && !($0.appSecret ?? "").isEmpty }
        page["anyWecom"] = !wecom.isEmpty
        page["wecomAccounts"] = wecom.map { ["id": $0.id, "selected": f["channels[3].account"] == $0.id] }
        page["variantBOn"] = on.contains("variants[1]")
        page["trackLinks"] = f["trackLinks:bool"] == "true"
        page["accounts"] = config.accounts.filter { $0.platform == .wechat }.map { ["id": $0.id, "selected": f["channels[2].account"] == $0.id] }
        if (page["variantA"] as? String ?? "").isEmpty { page["variantA"] = "A" }
        if (page["weightA"] as? String ?? "").isEmpty { page["weightA"] = "50" }
        if (page["weightB"] as? String ?? "").isEmpty { page["weightB"] = "50" }
        return page
    }

    func previewContext(_ p: JSONValue) -> [String: Any] {
        [
            "customerId": p.lookup("customerId")?.scalarText ?? "", "audienceSize": p.lookup("audienceSize")?.scalarText.flatMap(Int.init).map(ConsoleFormat.count) ?? "",
            "nobody": p.lookup("customerId") == nil,
            "variants": (p.lookup("variants")?.arrayValue ?? []).map { variant in
                [
                    "variant": variant.lookup("variant")?.scalarText ?? "", "weight": variant.lookup("weight")?.scalarText ?? "",
                    "channels": (variant.lookup("channels")?.arrayValue ?? []).map { c in
                        [
                            "channel": c.lookup("channel")?.scalarText ?? "", "adapter": c.lookup("adapter")?.scalarText ?? "",
                            "subject": c.lookup("subject")?.scalarText ?? "", "text": c.lookup("text")?.scalarText ?? "",
                            "html": c.lookup("html")?.scalarText ?? "", "template": c.lookup("template")?.scalarText ?? "",
                            "link": c.lookup("link")?.scalarText ?? "", "data": c.lookup("data").map(Self.pretty) ?? "",
                            "missing": c.lookup("missing")?.arrayValue?.compactMap(\.scalarText) ?? [],
                            "hasMissing": !(c.lookup("missing")?.arrayValue ?? []).isEmpty,
                        ] as [String: Any]
                    },
                ] as [String: Any]
            },
        ]
    }

    func reportContext(_ r: JSONValue, _ v: ConsoleVisitor) -> [String: Any] {
        let variants = (r.lookup("variants")?.objectValue ?? [:]).keys.sorted()
        let metrics = Self.campaignMetrics
        let series = variants.map { name in (name: name, values: metrics.map { Double(r.lookup("variants")?.objectValue?[name]?.lookup($0)?.scalarText ?? "0") ?? 0 }) }
        let conversions = r.lookup("conversions") ?? .null
        let rows = (conversions.lookup("variants")?.arrayValue ?? []).map { row -> [String: Any] in
            let lift = row.lookup("liftVsHoldout")
            return [
                "name": row.lookup("name")?.scalarText ?? "", "sent": row.lookup("sent")?.scalarText ?? "0", "converted": row.lookup("converted")?.scalarText ?? "0",
                "rate": Self.percent(row.lookup("conversionRate")), "lift": lift.map { Self.points($0.lookup("absolute")) } ?? "",
                "ci": lift.map { "\(Self.points($0.lookup("ci95.0"))) … \(Self.points($0.lookup("ci95.1")))" } ?? "",
                "significant": lift?.lookup("significant") == .bool(true),
            ]
        }
        let liftRows = (conversions.lookup("variants")?.arrayValue ?? []).compactMap { row -> (String, Double, Double, Double, Bool)? in
            guard let l = row.lookup("liftVsHoldout"), let lo = l.lookup("ci95.0")?.scalarText.flatMap(Double.init),
                let hi = l.lookup("ci95.1")?.scalarText.flatMap(Double.init), let point = l.lookup("absolute")?.scalarText.flatMap(Double.init)
            else { return nil }
            return (row.lookup("name")?.scalarText ?? "", lo, point, hi, l.lookup("significant") == .bool(true))
        }
        return [
            "chart": ConsoleCharts.grouped(metrics: metrics.map { v.t("m_" + $0) }, series: series, title: v.t("perVariant")),
            "table": variants.map { name in
                ["variant": name, "values": metrics.map { ConsoleFormat.count(Int(r.lookup("variants")?.objectValue?[name]?.lookup($0)?.scalarText ?? "0") ?? 0) }]
            },
            "metrics": metrics.map { v.t("m_" + $0) },
            "conversions": rows, "hasGoal": conversions.lookup("goal") != nil && conversions.lookup("goal") != .null,
            "liftChart": liftRows.isEmpty ? "" : ConsoleCharts.lift(liftRows.map { (label: $0.0, low: $0.1, point: $0.2, high: $0.3, significant: $0.4) }, title: v.t("liftTitle")),
            "holdoutSize": conversions.lookup("holdout.size")?.scalarText ?? "0", "holdoutConverted": conversions.lookup("holdout.converted")?.scalarText ?? "0",
            "holdoutRate": Self.percent(conversions.lookup("holdout.conversionRate")),
            "winner": conversions.lookup("winner")?.scalarText ?? "", "verdict": conversions.lookup("verdict")?.scalarText ?? "",
            "skipped": (r.lookup("skipped")?.objectValue ?? [:]).sorted { $0.key < $1.key }.map { ["reason": $0.key, "count": $0.value.scalarText ?? ""] },
            "failed": (r.lookup("failed")?.objectValue ?? [:]).sorted { $0.key < $1.key }.map { ["reason": $0.key, "count": $0.value.scalarText ?? ""] },
            "anyWecomTasks": !(r.lookup("wecomTasks")?.arrayValue ?? []).isEmpty,
            "wecomTasks": (r.lookup("wecomTasks")?.arrayValue ?? []).map { task -> [String: Any] in
                func count(_ path: String) -> Int { Int(task.lookup(path)?.scalarText ?? "0") ?? 0 }
                func n(_ path: String) -> String { ConsoleFormat.count(count(path)) }
                let final = count("results.sent") + count("results.alreadyReceived") + count("results.notFriend")
                let state = task.lookup("state")?.scalarText ?? ""
                return [
                    // Not `state`: the page's own state labels would replace this one.
                    "owner": task.lookup("owner")?.scalarText ?? "", "variant": task.lookup("variant")?.scalarText ?? "", "taskState": state,
                    "taskStateLabel": v.t("wecomState_" + state), "error": task.lookup("error")?.scalarText ?? "", "recipients": n("recipients"),
                    "sent": n("results.sent"), "alreadyReceived": n("results.alreadyReceived"), "notFriend": n("results.notFriend"), "failList": n("failList"),
                    // Until the first poll WeCom's counts are all zero: whoever is not final is waiting for the member.
                    "unsent": state == "submitted" ? ConsoleFormat.count(max(0, count("recipients") - count("failList") - final)) : "",
                ]
            },
        ]
    }

    static func percent(_ v: JSONValue?) -> String { String(format: "%.2f%%", (v?.scalarText.flatMap(Double.init) ?? 0) * 100) }
    static func points(_ v: JSONValue?) -> String { String(format: "%+.2f pp", (v?.scalarText.flatMap(Double.init) ?? 0) * 100) }

    /// JSON for people: indented, keys sorted.
    static func pretty(_ v: JSONValue) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: v.foundationValue ?? [:], options: [.prettyPrinted, .sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes])
        else { return v.text }
        return String(decoding: data, as: UTF8.self)
    }
}
