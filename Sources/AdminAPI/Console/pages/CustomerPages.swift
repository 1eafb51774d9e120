import Foundation
import GatewayCore
import Hummingbird
import Ingress

/// Customers: search by any identity or id, and the 360 view (identities, profile, tags, consent,
/// score and stage with their reasons, tier, timeline, sessions, journeys, CRM record), with the
/// edits, export and erasure the role allows.
extension ConsoleRoutes {
    func registerCustomers(on routes: DeclaredRoutes<Context>) {
        page(routes, "/console/customers", section: "customers") { request, context, v in
            let q = (ConsolePages.query(request)["q"] ?? "").trimmingCharacters(in: .whitespaces)
            var found = [[String: Any]]()
            var searched = false
            if !q.isEmpty {
                searched = true
                for path in searchPaths(q) {
                    let answer = try await api.get(path, as: request, context: context)
                    if answer.ok, let id = answer["id"]?.scalarText, !found.contains(where: { $0["id"] as? String == id }) {
                        found.append(summary(answer.json, v))
                    } else if !answer.ok, answer.status != .notFound, answer.status != .badRequest {
                        throw ConsoleAPI<Context>.Failed(answer: answer)
                    }
                }
            }
            return View(template: "customers", context: ["q": q, "results": found, "searched": searched, "none": searched && found.isEmpty, "any": !found.isEmpty])
        }
        page(routes, "/console/customers/:id", section: "customers") { request, context, v in
            let id = context.parameters.get("id") ?? ""
            guard ULID.isValid(id) else { throw ConsoleAPI<Context>.Failed(answer: .init(status: .notFound, json: .null, location: nil)) }
            let customer = try await api.require("/api/v1/customers/\(id)", as: request, context: context)
            let live = customer["id"]?.scalarText ?? id
            if live != id { return .redirect("/console/customers/\(live)") }
            async let timeline = api.get("/api/v1/customers/\(live)/timeline?limit=50", as: request, context: context)
            async let score = api.get("/api/v1/customers/\(live)/score", as: request, context: context)
            async let journeys = api.get("/api/v1/customers/\(live)/journeys", as: request, context: context)
            async let crm = api.get("/api/v1/customers/\(live)/crm", as: request, context: context)
            // Messages a page at a time: `?msgs=` is the cursor of the page shown.
            let msgsCursor = ConsolePages.query(request)["msgs"]
            let msgsPath = "/api/v1/customers/\(live)/messages?limit=10" + (msgsCursor.map { "&before=" + ConsolePages.queryValue($0) } ?? "")
            async let messages: ConsoleAPI<Context>.Answer? = v.can(.messagesRead) ? api.get(msgsPath, as: request, context: context) : nil
            var sessions = [[String: Any]]()
            // WeChat and Douyin conversations, each with a reply box while its window is open.
            for identity in customer["identities"]?.arrayValue ?? [] where ["openid", "douyin"].contains(identity.lookup("type")?.scalarText ?? "") {
                guard let account = identity.lookup("account")?.scalarText, let openid = identity.lookup("value")?.scalarText else { continue }
                let s = try await api.get("/api/v1/sessions/\(Self.segment(account))/\(Self.segment(openid))", as: request, context: context)
                guard s.ok else { continue }
                let open = s["windowOpen"] == .bool(true)
                sessions.append([
                    "account": account, "open": open, "until": v.time(s["windowOpenUntil"]?.scalarText),
                    "reply": open ? replyForm(type: identity.lookup("type")?.scalarText ?? "", account: account, customer: live) as Any : false,
                    "messages": (s["messages"]?.arrayValue ?? []).suffix(20).map(Self.sessionLine(v)),
                ])
            }
            var page = profileContext(customer.json, v)
            page["summary"] = summary(customer.json, v)
            page["timeline"] = (try await timeline).json.lookup("items")?.arrayValue?.map { item in
                ["at": v.time(item.lookup("at")?.scalarText), "type": item.lookup("type")?.scalarText ?? "", "data": item.lookup("data")?.text ?? ""]
            } ?? []
            let scored = try await score
            page["reasons"] = scored.json.lookup("reasons")?.arrayValue?.prefix(10).map { r in
                ["at": v.time(r.lookup("at")?.scalarText), "data": r.lookup("data")?.text ?? ""]
            } ?? []
            page["sessions"] = sessions
            page["journeys"] = (try await journeys).json.lookup("journeys")?.arrayValue?.map { j in
                ["name": j.lookup("name")?.scalarText ?? j.lookup("journey")?.scalarText ?? "", "journey": j.lookup("journey")?.scalarText ?? "",
                 "state": j.lookup("state")?.scalarText ?? "", "step": j.lookup("step")?.scalarText ?? "", "enrolledAt": v.time(j.lookup("enrolledAt")?.scalarText)]
            } ?? []
            let crmAnswer = try await crm
            page["crm"] = crmAnswer.ok ? crmAnswer.json.lookup("crm")?.arrayValue?.map { c in
                ["adapter": c.lookup("adapter")?.scalarText ?? "", "state": c.lookup("state")?.scalarText ?? "", "recordId": c.lookup("recordId")?.scalarText ?? "",
                 "syncedAt": v.time(c.lookup("syncedAt")?.scalarText), "lastError": c.lookup("lastError")?.scalarText ?? ""]
            } ?? [] : []
            if let answer = try await messages, answer.ok {
                page["showMessages"] = true
                page["messages"] = answer.json.lookup("messages")?.arrayValue?.map { m in
                    [
                        "id": m.lookup("id")?.scalarText ?? "", "channel": m.lookup("channel")?.scalarText ?? "", "state": m.lookup("state")?.scalarText ?? "",
                        "at": v.time(m.lookup("createdAt")?.scalarText), "campaign": m.lookup("campaign")?.scalarText ?? "",
                        "variant": m.lookup("variant")?.scalarText ?? "", "journey": m.lookup("journey")?.scalarText ?? "",
                        "reason": m.lookup("reason")?.scalarText ?? m.lookup("lastError")?.scalarText ?? "",
                    ]
                } ?? []
                if let next = answer.json.lookup("next")?.scalarText { page["olderHref"] = "/console/customers/\(live)?msgs=\(ConsolePages.queryValue(next))#h-messages" }
                if msgsCursor != nil { page["newestHref"] = "/console/customers/\(live)#h-messages" }
            }
            return View(template: "customer", context: page)
        }
    }

    /// Where a search text may be: a customer id, an email, a phone, a union id, an external id, or
    /// an openid or WeCom contact of any account.
    func searchPaths(_ q: String) -> [String] {
        let e = q.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        if ULID.isValid(q) { return ["/api/v1/customers/\(q)"] }
        if q.contains("@") { return ["/api/v1/customers/lookup?email=\(e)"] }
        var paths = [String]()
        if q.first == "+" || q.allSatisfy({ $0.isNumber || $0 == " " || $0 == "-" }) { paths.append("/api/v1/customers/lookup?phone=\(e)") }
        paths += ["/api/v1/customers/lookup?unionid=\(e)", "/api/v1/customers/lookup?external=\(e)"]
        for account in config.accounts {
            let kind = account.platform == .wecom ? "wecom" : "openid"
            paths.append("/api/v1/customers/lookup?\(kind)=\(e)&account=\(account.id.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")")
        }
        return paths
    }

    static func segment(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(["-", "_", "."])) ?? "" }

    /// The lines a customer is shown by in lists and at the top of the 360 view.
    func summary(_ c: JSONValue, _ v: ConsoleVisitor) -> [String: Any] {
        [
            "id": c.lookup("id")?.scalarText ?? "",
            "name": c.lookup("profile.name")?.scalarText ?? "",
            "identities": c.lookup("identities")?.arrayValue?.map { i in
                ["type": i.lookup("type")?.scalarText ?? "", "account": i.lookup("account")?.scalarText ?? "", "value": i.lookup("value")?.scalarText ?? ""]
            } ?? [],
            "tags": c.lookup("tags")?.arrayValue?.compactMap(\.scalarText) ?? [],
            "score": c.lookup("score")?.scalarText ?? "0", "stage": c.lookup("stage")?.scalarText ?? "new", "tier": c.lookup("tier")?.scalarText ?? "",
            "lastSeenAt": v.time(c.lookup("lastSeenAt")?.scalarText), "createdAt": v.time(c.lookup("createdAt")?.scalarText),
        ]
    }

    /// One message of a conversation as the page lists it: when (the session stores ms), which way, and
    /// its words (a text's `Content` in, a reply's `content` out), else its type.
    static func sessionLine(_ v: ConsoleVisitor) -> (JSONValue) -> [String: Any] {
        { m in
            let at = v.time(m.lookup("at")?.scalarText)
            let words = m.lookup("data.Content")?.scalarText ?? m.lookup("data.content")?.scalarText ?? m.lookup("text")?.scalarText
            return ["at": at, "out": m.lookup("direction")?.scalarText == "out", "text": words ?? m.lookup("type")?.scalarText ?? m.text]
        }
    }

    /// What a session's reply box sends: a Douyin reply on the douyin channel's adapter; a WeChat one
    /// through the enabled customer-service adapter (wechat-custom or its sandbox). nil when none can go.
    func replyForm(type: String, account: String, customer: String) -> [String: Any]? {
        if type == "douyin" {
            guard config.outbound.channels["douyin"] != nil else { return nil }
            return ["channel": "douyin", "account": account, "customer": customer]
        }
        let enabled = Set(config.outbound.extraAdapters + Array(config.outbound.channels.values))
        guard let adapter = ["wechat-custom", "sandbox-wechat-custom"].first(where: enabled.contains) else { return nil }
        return ["channel": "wechat", "adapter": adapter, "account": account, "customer": customer]
    }

    /// The profile form (one input per declared attribute) and the consent per channel.
    func profileContext(_ c: JSONValue, _ v: ConsoleVisitor) -> [String: Any] {
        let attributes = config.customers.attributes.attributes.values.sorted { $0.name < $1.name }
        let profile = attributes.map { a -> [String: Any] in
            var field: [String: Any] = ["name": a.name, "value": c.lookup("profile.\(a.name)")?.scalarText ?? "", "kind": a.kind.name]
            switch a.kind {
            case .number: field["field"] = "profile.\(a.name):num"
            case .boolean: field["field"] = "profile.\(a.name):bool"
            case .enumeration(let values):
                let current = c.lookup("profile.\(a.name)")?.scalarText
                field["options"] = values.map { ["value": $0, "selected": $0 == current] }
                field["isEnum"] = true
                field["field"] = "profile.\(a.name)"
            default: field["field"] = "profile.\(a.name)"
            }
            return field
        }
        var channels = Set(["email", "sms"])
        if case .object(let consent)? = c.lookup("consent") { channels.formUnion(consent.keys) }
        let consent = channels.sorted().map { ch -> [String: Any] in
            let state = c.lookup("consent")?.objectValue?[ch]?.lookup("state")?.scalarText ?? "unknown"
            return [
                "channel": ch, "state": state, "granted": state == "granted", "editable": ch == "email" || ch == "sms", "at": v.time(c.lookup("consent")?.objectValue?[ch]?.lookup("updatedAt")?.scalarText),
                "source": c.lookup("consent")?.objectValue?[ch]?.lookup("source")?.scalarText ?? "",
            ]
        }
        return ["profile": profile, "consent": consent]
    }
}

extension JSONValue {
    var arrayValue: [JSONValue]? { if case .array(let a) = self { a } else { nil } }
    var objectValue: [String: JSONValue]? { if case .object(let o) = self { o } else { nil } }
}
