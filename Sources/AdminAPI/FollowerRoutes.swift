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
                case .started: return try JSONResponse.encoded(try await progress(sync, account), status: .accepted)
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
                    return try JSONResponse.encoded(PushProgress(account, p), status: .accepted)
                case .alreadyRunning: throw APIError(.conflict, "push_running", "a push of \(tag) to \(account) is already running")
                }
            }
        }
        group.get("/accounts/:id/tags/:tag/push", .importsRead) { _, context in
            try await storage {
                let (sync, account) = try connected(try context.parameters.require("id"))
                guard let p = try await sync.tagPushProgress(account: account, tag: try pushableTag(context)) else { throw APIError.notFound("push") }
                return try JSONResponse.encoded(PushProgress(account, p))
            }
        }
        group.get("/accounts/:id/followers/import", .importsRead) { _, context in
            try await storage {
                let (sync, account) = try connected(try context.parameters.require("id"))
                return try JSONResponse.encoded(try await progress(sync, account))
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

    func progress(_ sync: FollowerSync, _ account: String) async throws -> ImportProgress {
        guard let p = try await sync.importProgress(account: account) else { throw APIError.notFound("import") }
        return ImportProgress(account, p)
    }

    /// A follower import: followers `imported` and customers `created` so far.
    struct ImportProgress: Encodable {
        let account: String
        let state: String
        let total: Int
        let imported: Int
        let created: Int
        let percent: Int
        let error: String?
        let startedAt: String?
        let updatedAt: String?

        init(_ account: String, _ p: FollowerSync.ImportProgress) {
            self.account = account
            state = p.state
            total = p.total
            imported = p.imported
            created = p.created
            percent = p.total > 0 ? min(100, p.imported * 100 / p.total) : 0
            error = p.error
            startedAt = p.startedAt.map(JSONResponse.isoTime)
            updatedAt = p.updatedAt.map(JSONResponse.isoTime)
        }
    }

    /// A tag push: customers `checked` and openids `tagged` on WeChat so far.
    struct PushProgress: Encodable {
        let account: String
        let state: String
        let total: Int
        let checked: Int
        let tagged: Int
        let percent: Int
        let error: String?
        let startedAt: String?
        let updatedAt: String?

        init(_ account: String, _ p: FollowerSync.ImportProgress) {
            let i = ImportProgress(account, p)
            (self.account, state, total, checked, tagged, percent) = (i.account, i.state, i.total, i.imported, i.created, i.percent)
            (error, startedAt, updatedAt) = (i.error, i.startedAt, i.updatedAt)
        }
    }
}
