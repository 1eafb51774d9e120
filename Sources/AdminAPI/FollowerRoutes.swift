import Foundation
import GatewayCore
import HTTPAPI
import Hummingbird
import Ingress
import Outbound

/// `POST|GET /api/v1/accounts/{id}/followers/import`: import an account's existing followers, and
/// watch its progress.
struct FollowerRoutes {
    let config: GatewayConfig
    let followers: FollowerSync?

    func register<Context: RequestContext>(on group: DeclaredRoutes<Context>) {
        group.post("/accounts/:id/followers/import", .followersWrite) { _, context in
            try await storage {
                let (sync, account) = try connected(try context.parameters.require("id"))
                switch try await sync.startImport(account: account) {
                case .started: return JSONResponse.ok(try await progress(sync, account), status: .accepted)
                case .alreadyRunning: throw APIError(.conflict, "import_running", "an import of \(account) is already running")
                }
            }
        }
        // Pushes a tag's customers to the account's WeChat tag of the same name. Progress: `imported` =
        // customers looked at, `created` = openids tagged on WeChat.
        group.post("/accounts/:id/tags/:tag/push", .followersWrite) { _, context in
            try await storage {
                let (sync, account) = try connected(try context.parameters.require("id"))
                let tag = try pushableTag(context)
                switch try await sync.startTagPush(account: account, tag: tag) {
                case .started:
                    guard let p = try await sync.tagPushProgress(account: account, tag: tag) else { throw APIError.notFound("push") }
                    return JSONResponse.ok(json(account, p, counts: ("checked", "tagged")), status: .accepted)
                case .alreadyRunning: throw APIError(.conflict, "push_running", "a push of \(tag) to \(account) is already running")
                }
            }
        }
        group.get("/accounts/:id/tags/:tag/push", .importsRead) { _, context in
            try await storage {
                let (sync, account) = try connected(try context.parameters.require("id"))
                guard let p = try await sync.tagPushProgress(account: account, tag: try pushableTag(context)) else { throw APIError.notFound("push") }
                return JSONResponse.ok(json(account, p, counts: ("checked", "tagged")))
            }
        }
        group.get("/accounts/:id/followers/import", .importsRead) { _, context in
            try await storage {
                let (sync, account) = try connected(try context.parameters.require("id"))
                return JSONResponse.ok(try await progress(sync, account))
            }
        }
    }

    func connected(_ account: String) throws -> (FollowerSync, String) {
        guard let a = config.account(account), a.platform == .wechat else { throw APIError.notFound("account") }
        guard let sync = followers, a.appSecret != nil else {
            throw APIError.badRequest(
                "account \(account) is not connected to the WeChat API (needs appSecret and a real WeChat adapter)", code: "account_not_connected")
        }
        return (sync, account)
    }

    func pushableTag(_ context: some RequestContext) throws -> String {
        let raw = try context.parameters.require("tag")
        let tag = raw.removingPercentEncoding ?? raw
        guard TagName.isValid(tag) else { throw APIError.badRequest(TagName.rule, code: "invalid_tag") }
        guard tag.count <= 30 else { throw APIError.badRequest("WeChat tag names are at most 30 characters", code: "invalid_tag") }
        return tag
    }

    func progress(_ sync: FollowerSync, _ account: String) async throws -> String {
        guard let p = try await sync.importProgress(account: account) else { throw APIError.notFound("import") }
        return json(account, p)
    }

    /// An import counts followers `imported` and customers `created`; a push, customers `checked` and
    /// openids `tagged`.
    func json(_ account: String, _ p: FollowerSync.ImportProgress, counts: (String, String) = ("imported", "created")) -> String {
        var pairs: [(String, String)] = [
            ("account", JSONText.quote(account)), ("state", JSONText.quote(p.state)), ("total", String(p.total)), (counts.0, String(p.imported)),
            (counts.1, String(p.created)),
            ("percent", p.total > 0 ? String(min(100, p.imported * 100 / p.total)) : "0"),
        ]
        if let e = p.error { pairs.append(("error", JSONText.quote(e))) }
        if let s = p.startedAt { pairs.append(("startedAt", JSONResponse.time(s))) }
        if let u = p.updatedAt { pairs.append(("updatedAt", JSONResponse.time(u))) }
        return JSONText.object(pairs)
    }
}
