import Foundation
import GatewayCore
import Hummingbird
import Ingress

/// Operations: dead letters (the provider's answer, replay, discard), the audit log (newest first),
/// API keys (create, shown once; revoke), and a read-only view of accounts, adapters and CRM sync
/// (never a secret).
extension ConsoleRoutes {
    static var operationTabs: [(key: String, href: String, needs: Permission)] {
        [
            ("deadLetters", "/console/operations", .messagesRead), ("auditLog", "/console/operations/audit", .auditRead),
            ("apiKeys", "/console/operations/keys", .keysManage), ("system", "/console/operations/system", .operationsRead),
        ]
    }

    func tabs(_ current: String, _ v: ConsoleVisitor) -> [[String: Any]] {
        Self.operationTabs.filter { v.can($0.needs) }.map { ["href": $0.href, "label": v.t($0.key), "current": $0.key == current] }
    }

    func registerOperations(on routes: DeclaredRoutes<Context>) {
        page(routes, "/console/operations", section: "operations") { request, context, v in
            let after = ConsolePages.query(request)["after"].map { "&after=" + Self.segment($0) } ?? ""
            let list = try await api.require("/api/v1/deadletters?limit=50" + after, as: request, context: context)
            let letters = (list["deadLetters"]?.arrayValue ?? []).map { d in
                [
                    "id": d.lookup("id")?.scalarText ?? "", "messageId": d.lookup("messageId")?.scalarText ?? "", "channel": d.lookup("channel")?.scalarText ?? "",
                    "adapter": d.lookup("adapter")?.scalarText ?? "", "reason": d.lookup("reason")?.scalarText ?? "", "error": d.lookup("error")?.scalarText ?? "",
                    "answer": d.lookup("answer")?.scalarText ?? "", "at": v.time(d.lookup("at")?.scalarText),
                    "mayHaveIt": d.lookup("providerSaw")?.scalarText == "unknown",
                ] as [String: Any]
            }
            return View(
                template: "operations",
                context: [
                    "tabs": tabs("deadLetters", v), "deadLetters": letters, "any": !letters.isEmpty,
                    "next": letters.count == 50 ? (letters.last?["id"] ?? "") : "",
                ])
        }
        page(routes, "/console/operations/audit", section: "operations") { request, context, v in
            let q = ConsolePages.query(request)
            var path = "/api/v1/audit?order=newest&limit=100"
            if let after = q["after"] { path += "&after=" + Self.segment(after) }
            if let actor = q["actor"], !actor.isEmpty { path += "&actor=" + Self.segment(actor) }
            let page = try await api.require(path, as: request, context: context)
            let entries = (page["entries"]?.arrayValue ?? []).map { e in
                [
                    "at": v.time(e.lookup("at")?.scalarText), "actor": e.lookup("actor")?.scalarText ?? "", "role": e.lookup("role")?.scalarText ?? "",
                    "method": e.lookup("method")?.scalarText ?? "", "route": e.lookup("route")?.scalarText ?? "",
                    "targets": e.lookup("targets")?.arrayValue?.compactMap(\.scalarText).joined(separator: ", ") ?? "",
                    "status": e.lookup("status")?.scalarText ?? "", "outcome": e.lookup("outcome")?.scalarText ?? "",
                ]
            }
            return View(
                template: "audit",
                context: [
                    "tabs": tabs("auditLog", v), "entries": entries, "any": !entries.isEmpty, "actor": q["actor"] ?? "",
                    "next": page["next"]?.scalarText ?? "",
                ])
        }
        page(routes, "/console/operations/keys", section: "operations") { request, context, v in
            let list = try await api.require("/api/v1/keys", as: request, context: context)
            let keys = (list["keys"]?.arrayValue ?? []).map { k in
                [
                    "id": k.lookup("id")?.scalarText ?? "", "prefix": k.lookup("prefix")?.scalarText ?? "", "name": k.lookup("name")?.scalarText ?? "",
                    "role": k.lookup("role")?.scalarText ?? "", "grants": k.lookup("grants")?.arrayValue?.compactMap(\.scalarText).joined(separator: ", ") ?? "",
                    "createdAt": v.time(k.lookup("createdAt")?.scalarText), "lastUsedAt": v.time(k.lookup("lastUsedAt")?.scalarText),
                    "expiresAt": v.time(k.lookup("expiresAt")?.scalarText), "revokedAt": v.time(k.lookup("revokedAt")?.scalarText),
                    "revoked": k.lookup("revokedAt") != nil && k.lookup("revokedAt") != .null,
                ]
            }
            return View(
                template: "keys", context: ["tabs": tabs("apiKeys", v), "keys": keys, "any": !keys.isEmpty, "roles": Role.allCases.map(\.rawValue)])
        }
        page(routes, "/console/operations/system", section: "operations") { request, context, v in
            async let adapters = api.get("/api/v1/adapters", as: request, context: context)
            async let crm = api.get("/api/v1/crm", as: request, context: context)
            async let scoring = api.get("/api/v1/scoring/rules", as: request, context: context)
            async let redis = api.get("/api/v1/redis", as: request, context: context)
            let accounts = config.accounts.map { a in ["id": a.id, "platform": a.platform.rawValue, "mode": a.mode.rawValue, "appId": a.appId] }
            let adapterRows = (try await adapters).json.lookup("adapters")?.arrayValue?.map { a in
                [
                    "name": a.lookup("name")?.scalarText ?? "", "channel": a.lookup("channel")?.scalarText ?? "", "renders": a.lookup("renders")?.scalarText ?? "",
                    "sandbox": a.lookup("sandbox") == .bool(true), "bulk": a.lookup("queued.bulk")?.scalarText ?? "0",
                    "transactional": a.lookup("queued.transactional")?.scalarText ?? "0", "state": a.lookup("circuit")?.scalarText ?? a.lookup("state")?.scalarText ?? "",
                ]
            } ?? []
            let crmAnswer = try await crm
            let crmRows = crmAnswer.ok ? (crmAnswer.json.lookup("adapters")?.arrayValue ?? []).map { c in ["name": c.lookup("name")?.scalarText ?? c.lookup("adapter")?.scalarText ?? "", "summary": c.text] } : []
            var page: [String: Any] = ["tabs": tabs("system", v), "accounts": accounts, "adapters": adapterRows, "crm": crmRows, "anyCRM": !crmRows.isEmpty]
            let redisAnswer = try await redis
            if redisAnswer.ok {
                page["redis"] = [
                    "cluster": redisAnswer["mode"]?.scalarText == "cluster", "slotsCovered": redisAnswer["slotsCovered"]?.scalarText ?? "",
                    "imbalance": redisAnswer["keyImbalancePercent"]?.scalarText ?? "0",
                    "nodes": (redisAnswer["nodes"]?.arrayValue ?? []).map { n in
                        [
                            "endpoint": n.lookup("endpoint")?.scalarText ?? "", "role": n.lookup("role")?.scalarText ?? "", "master": n.lookup("master")?.scalarText ?? "",
                            "state": n.lookup("state")?.scalarText ?? "", "down": n.lookup("state")?.scalarText != "up", "slots": n.lookup("slots")?.scalarText ?? "",
                            "keys": n.lookup("keys")?.scalarText ?? "", "memory": (n.lookup("usedMemoryBytes")?.scalarText).flatMap(Double.init).map { String(format: "%.1f MB", $0 / 1_048_576) } ?? "",
                        ] as [String: Any]
                    },
                ] as [String: Any]
            }
            let rules = try await scoring
            if rules.ok {
                page["scoring"] = [
                    "halfLife": rules["halfLifeDays"]?.scalarText ?? "0", "qualifyAt": rules["qualifyAt"]?.scalarText ?? "", "lastError": rules["lastError"]?.scalarText ?? "",
                    "rules": (rules["rules"]?.arrayValue ?? []).map { r in
                        [
                            "id": r.lookup("id")?.scalarText ?? "", "on": r.lookup("on")?.scalarText ?? "", "condition": r.lookup("condition")?.scalarText ?? "",
                            "points": r.lookup("points")?.scalarText ?? "0", "maxPerDay": r.lookup("maxPerDay")?.scalarText ?? "",
                            "ruleTags": r.lookup("tags")?.arrayValue?.compactMap(\.scalarText).joined(separator: ", ") ?? "", "qualify": r.lookup("qualify") == .bool(true),
                        ]
                    },
                    "stages": (rules["stages"]?.arrayValue ?? []).map { s in ["name": s.lookup("name")?.scalarText ?? "", "minScore": s.lookup("minScore")?.scalarText ?? ""] },
                    "tiers": (rules["tiers"]?.arrayValue ?? []).map { t in
                        [
                            "tierName": t.lookup("name")?.scalarText ?? "", "tierMin": t.lookup("minScore")?.scalarText ?? "",
                            "tierStages": t.lookup("stages")?.arrayValue?.compactMap(\.scalarText).joined(separator: ", ") ?? "",
                            "tierTags": t.lookup("tags")?.arrayValue?.compactMap(\.scalarText).joined(separator: ", ") ?? "",
                        ]
                    },
                ] as [String: Any]
            }
            return View(template: "system", context: page)
        }
    }
}
