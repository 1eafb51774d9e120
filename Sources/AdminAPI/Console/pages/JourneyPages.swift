import Foundation
import GatewayCore
import Hummingbird
import Ingress

/// Journeys: the list, a YAML editor to create and edit (the API's validation errors shown, the text
/// kept), and one journey as a flow diagram with live per-step counts, its lifecycle buttons and its
/// versions.
extension ConsoleRoutes {
    /// The expo journey: what a new journey's editor starts with.
    static var expoJourneyYAML: String {
        """
        name: Expo 2026 visitors
        # Who enters: a scan of the expo QR code (scene expo2026) that subscribes.
        trigger: {event: subscribe, scene: expo2026}
        # Reminders count back from each visitor's expo date.
        anchor: profile.expo_date
        # Registering takes a visitor out of the reminders at once.
        exitOn: [{event: web.register}]
        steps:
          - id: invite
            send:
              channels:
                - {channel: wechat, account: demo, template: EXPO_INVITE, data: {first: "Welcome to Expo 2026"}}
                - {channel: sms, text: "Welcome to Expo 2026: register at https://expo.example.com"}
          - {id: wait-3d, wait: {until: anchor, offset: -P3D}}
          - id: remind-3d
            send: {channels: [{channel: sms, text: "Expo 2026 is in 3 days: register at https://expo.example.com"}]}
          - {id: wait-1d, wait: {until: anchor, offset: -P1D}}
          - id: remind-1d
            send: {channels: [{channel: sms, text: "Expo 2026 is tomorrow"}]}
          - {id: wait-1h, wait: {until: anchor, offset: -PT1H}}
          - id: remind-1h
            send: {channels: [{channel: sms, text: "Expo 2026 opens in an hour"}]}
          - {id: wait-after, wait: {until: anchor, offset: P1D}}
          - id: thanks
            send: {channels: [{channel: sms, text: "Thank you for visiting Expo 2026"}]}
        """
    }

    func registerJourneys(on routes: DeclaredRoutes<Context>) {
        page(routes, "/console/journeys", section: "journeys") { request, context, v in
            let list = try await api.require(ConsolePager.apiPath("/api/v1/journeys", limit: 50, request), as: request, context: context)
            let rows = (list["journeys"]?.arrayValue ?? []).map { j in
                [
                    "id": j.lookup("id")?.scalarText ?? "", "name": j.lookup("name")?.scalarText ?? "", "state": j.lookup("state")?.scalarText ?? "",
                    "version": j.lookup("version")?.scalarText ?? "", "updatedAt": v.time(j.lookup("updatedAt")?.scalarText),
                    "trigger": Self.triggerText(j.lookup("definition.trigger")),
                ]
            }
            let page: [String: Any] = ["journeys": rows, "any": !rows.isEmpty]
            return View(template: "journeys", context: page.merging(ConsolePager.links(list.json, consolePath: "/console/journeys", request)) { a, _ in a })
        }
        page(routes, "/console/journeys/new", section: "journeys") { _, _, _ in
            View(template: "journey-edit", context: ["yaml": Self.expoJourneyYAML, "creating": true])
        }
        page(routes, "/console/journeys/:id", section: "journeys") { request, context, v in
            let id = Self.segment(context.parameters.get("id") ?? "")
            let journey = try await api.require("/api/v1/journeys/\(id)", as: request, context: context)
            let versions = try await api.get("/api/v1/journeys/\(id)/versions", as: request, context: context)
            let state = journey["state"]?.scalarText ?? ""
            var page: [String: Any] = [
                "id": journey["id"]?.scalarText ?? "", "name": journey["name"]?.scalarText ?? "", "state": state,
                "version": journey["version"]?.scalarText ?? "", "createdAt": v.time(journey["createdAt"]?.scalarText),
                "activatedAt": v.time(journey["activatedAt"]?.scalarText), "trigger": Self.triggerText(journey["definition.trigger"]),
                "canActivate": state == "draft", "canPause": state == "active", "canResume": state == "paused", "canEdit": state != "archived",
                "canArchive": state != "archived", "live": state == "active",
            ]
            for k in ["enrolled", "active", "completed", "exited", "converted"] {
                page[k] = ConsoleFormat.count(Int(journey["report.\(k)"]?.scalarText ?? "0") ?? 0)
            }
            let steps = journey["report.steps"]?.arrayValue ?? []
            let definitionSteps = journey["definition.steps"]?.arrayValue ?? []
            page["flow"] = ConsoleCharts.flow(Self.flowSteps(definition: definitionSteps, report: steps, v), title: v.t("flowTitle"))
            page["steps"] = steps.map { s in
                [
                    "id": s.lookup("id")?.scalarText ?? "", "kind": s.lookup("kind")?.scalarText ?? "",
                    "entered": s.lookup("entered")?.scalarText ?? "0", "waiting": s.lookup("waiting")?.scalarText ?? "0",
                    "completed": s.lookup("completed")?.scalarText ?? "0", "sent": s.lookup("sent")?.scalarText ?? "",
                    "exited": s.lookup("exited")?.scalarText ?? "0",
                ]
            }
            page["yaml"] = journey["definition"].map(Self.yaml) ?? ""
            page["versions"] = (versions["versions"]?.arrayValue ?? []).map { ver in
                ["version": ver.lookup("version")?.scalarText ?? "", "current": ver.lookup("current") == .bool(true), "yaml": ver.lookup("definition").map(Self.yaml) ?? ""]
            }
            return View(template: "journey", context: page)
        }
    }

    static func triggerText(_ t: JSONValue?) -> String {
        guard case .object(let o)? = t else { return "" }
        return o.keys.sorted().compactMap { k in o[k]?.scalarText.map { "\(k): \($0)" } }.joined(separator: ", ")
    }

    /// The boxes and arrows of the flow: each step with its counts, to its `next` (default the one
    /// after it), a branch to both of its targets, an exit to nothing.
    static func flowSteps(definition: [JSONValue], report: [JSONValue], _ v: ConsoleVisitor) -> [ConsoleCharts.FlowStep] {
        let counts = Dictionary(report.compactMap { r in r.lookup("id")?.scalarText.map { ($0, r) } }, uniquingKeysWith: { a, _ in a })
        return definition.enumerated().map { i, step in
            let id = step.lookup("id")?.scalarText ?? "step\(i)"
            let kind = ["send", "wait", "branch", "tag", "update", "crm", "exit"].first { step.lookup($0) != nil } ?? "step"
            var targets = [String]()
            if kind == "branch" {
                targets = [step.lookup("branch.then")?.scalarText, step.lookup("branch.else")?.scalarText].compactMap { $0 }
            } else if kind != "exit" {
                if let next = step.lookup("next")?.scalarText { targets = [next] } else if i + 1 < definition.count {
                    targets = [definition[i + 1].lookup("id")?.scalarText ?? ""]
                }
            }
            let r = counts[id]
            func n(_ k: String) -> String { ConsoleFormat.count(Int(r?.lookup(k)?.scalarText ?? "0") ?? 0) }
            var detail = "\(v.t("entered")) \(n("entered")) · \(v.t("waitingNow")) \(n("waiting"))"
            if kind == "send" { detail += " · \(v.t("m_sent")) \(n("sent"))" }
            if kind == "branch" { detail += " · \(v.t("yes")) \(n("then")) / \(v.t("no")) \(n("else"))" }
            return ConsoleCharts.FlowStep(id: id, kind: kind, detail: detail, targets: targets)
        }
    }

    /// A definition as YAML for the editor (keys sorted).
    static func yaml(_ definition: JSONValue) -> String { SafeYAML.dump(definition) ?? pretty(definition) }
}
