import Foundation
import GatewayCore
import HTTPAPI
import Hummingbird
import Ingress
import Outbound
import Store

/// `/api/v1/accounts/{id}/replies`: the welcome, per-scene welcomes, keyword rules, menu-click replies
/// and the default reply of an account (`ReplyRules`). `PUT` checks every rule and replaces them all;
/// every process answers with the new rules within a poll. `DELETE` goes back to the config file's.
struct ReplyRoutes {
    let config: GatewayConfig
    let store: SurfaceStore
    let cache: SurfaceCache?

    struct View: Encodable {
        let account: String
        /// `stored` (saved through the API) or `config` (the config file's `autoReply`).
        let source: String
        let rules: ReplyRules
    }

    func register<Context: RequestContext>(on group: DeclaredRoutes<Context>) {
        group.get("/accounts/:id/replies", .channelsRead) { _, context in
            let account = try WeChatFailure.account(config, context, platform: nil)
            return try await storage {
                let stored = try await store.replyRules(account: account.id)
                return try JSONResponse.encoded(View(account: account.id, source: stored == nil ? "config" : "stored", rules: stored ?? ReplyRules(account: account)))
            }
        }
        group.put("/accounts/:id/replies", .channelsWrite) { request, context in
            let account = try WeChatFailure.account(config, context, platform: nil)
            let rules = try await request.decodeJSON(ReplyRules.self, maxBytes: 256 * 1024)
            let problems = rules.problems()
            guard problems.isEmpty else { throw APIError.badRequest(problems.prefix(20).joined(separator: "; "), code: "invalid_replies") }
            return try await storage {
                try await store.putReplyRules(account: account.id, rules)
                _ = try? await cache?.refresh()
                return try JSONResponse.encoded(View(account: account.id, source: "stored", rules: rules))
            }
        }
        group.delete("/accounts/:id/replies", .channelsWrite) { _, context in
            let account = try WeChatFailure.account(config, context, platform: nil)
            return try await storage {
                try await store.putReplyRules(account: account.id, nil)
                _ = try? await cache?.refresh()
                return try JSONResponse.encoded(View(account: account.id, source: "config", rules: ReplyRules(account: account)))
            }
        }
    }
}

/// `/api/v1/accounts/{id}/menu`: the custom menu. `PUT` checks it against WeChat's limits (a 400
/// names the offending button), publishes it with `menu/create`, and keeps it; `GET` shows the
/// menu last published through the gateway.
struct MenuRoutes {
    let config: GatewayConfig
    let store: SurfaceStore
    let wechat: any WeChatSurfaces

    func register<Context: RequestContext>(on group: DeclaredRoutes<Context>) {
        group.get("/accounts/:id/menu", .channelsRead) { _, context in
            let account = try WeChatFailure.account(config, context, platform: .wechat)
            return try await storage {
                guard let raw = try await store.menu(account: account.id), let menu = try? JSONDecoder().decode(CustomMenu.self, from: Data(raw.utf8)) else {
                    throw APIError(.notFound, "no_menu", "no menu was published through the gateway for account \(account.id)")
                }
                return try JSONResponse.encoded(menu)
            }
        }
        group.put("/accounts/:id/menu", .channelsWrite) { request, context in
            let account = try WeChatFailure.account(config, context, platform: .wechat)
            let menu = try await request.decodeJSON(CustomMenu.self, maxBytes: 64 * 1024)
            let problems = menu.problems()
            guard problems.isEmpty else { throw APIError.badRequest(problems.joined(separator: "; "), code: "invalid_menu") }
            do { try await wechat.publishMenu(account: account.id, menu: menu) } catch { throw WeChatFailure.apiError(error, account: account.id) }
            return try await storage {
                try await store.putMenu(account: account.id, json: String(decoding: try JSONEncoder().encode(menu), as: UTF8.self))
                return try JSONResponse.encoded(menu)
            }
        }
    }
}
