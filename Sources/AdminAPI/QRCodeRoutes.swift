import Foundation
import GatewayCore
import HTTPAPI
import Hummingbird
import Ingress
import NIOCore
import Outbound
import QRImage
import Store

/// `/api/v1/accounts/{id}/qrcodes`: QR codes per scene (a booth, a poster, a salesperson).
/// - `POST` issues a permanent or temporary code through `qrcode/create` and stores the scene with
///   the tags and owner a scan applies; every process applies them within a poll, without a restart.
///   Posting an existing scene again updates its tags and owner (WeChat returns the same permanent code).
/// - `GET` lists the scenes (the config file's too) with scans, subscribes and unsubscribes: the
///   source-attribution report. `GET .../{scene}.png` draws the code; `DELETE` stops applying a scene.
struct QRCodeRoutes {
    let config: GatewayConfig
    let store: SurfaceStore
    let wechat: any WeChatSurfaces
    let cache: SurfaceCache?
    let clock: @Sendable () -> Int64

    struct CreateBody: Decodable {
        let scene: String
        let tags: [String]?
        let owner: String?
        let permanent: Bool?
        let expiresInSeconds: Int?
    }

    struct Counts: Encodable {
        let scans: Int
        let subscribes: Int
        let unsubscribes: Int
        /// Subscribes less unsubscribes: followers this scene brought who still follow.
        let net: Int

        init(_ c: SurfaceStore.SceneCounts?) {
            scans = c?.scans ?? 0
            subscribes = c?.subscribes ?? 0
            unsubscribes = c?.unsubscribes ?? 0
            net = subscribes - unsubscribes
        }
    }

    struct View: Encodable {
        let scene: String
        let tags: [String]
        let owner: String?
        /// `api`, `config`, or `deleted` (counts of a scene no longer applied).
        let source: String
        let permanent: Bool
        let expiresAt: String?
        let expired: Bool
        let ticket: String?
        let url: String?
        /// WeChat's own image of the code.
        let showUrl: String?
        /// The code drawn by the gateway, a PNG.
        let imageUrl: String?
        let sandbox: Bool
        let createdAt: String?
        let createdBy: String?
        let counts: Counts
    }

    struct List: Encodable {
        let account: String
        let scenes: [View]
        let totals: Counts
    }

    func view(account: String, _ s: QRScene, counts: SurfaceStore.SceneCounts?) -> View {
        View(
            scene: s.scene, tags: s.tags, owner: s.owner, source: s.source, permanent: s.permanent, expiresAt: s.expiresAt.map(JSONResponse.isoTime),
            expired: s.isExpired(nowMs: clock()), ticket: s.ticket, url: s.url,
            showUrl: s.ticket.flatMap { s.sandbox ? nil : "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=" + ConsolePages.queryValue($0) },
            imageUrl: s.url == nil ? nil : "/api/v1/accounts/\(account)/qrcodes/\(s.scene).png", sandbox: s.sandbox,
            createdAt: s.source == "api" ? JSONResponse.isoTime(s.createdAt) : nil, createdBy: s.source == "api" ? s.createdBy : nil,
            counts: Counts(counts))
    }

    func register<Context: RequestContext>(on group: DeclaredRoutes<Context>) {
        group.post("/accounts/:id/qrcodes", .channelsWrite) { request, context in
            let account = try wechatAccount(context)
            let body = try await request.decodeJSON(CreateBody.self, maxBytes: 8192)
            let scene = try validate(body)
            return try await storage {
                let ticket: QRTicket
                do {
                    ticket = try await wechat.createQRCode(account: account.id, scene: scene.scene, expireSeconds: scene.permanent ? nil : body.expiresInSeconds)
                } catch { throw WeChatFailure.apiError(error, account: account.id) }
                var stored = scene
                stored.ticket = ticket.ticket
                stored.url = ticket.url
                stored.sandbox = wechat.isSandbox
                if let s = ticket.expireSeconds, !scene.permanent { stored.expiresAt = scene.createdAt + Int64(s) * 1000 }
                let saved = try await store.putScene(account: account.id, stored)
                if saved == .full { throw APIError(.conflict, "too_many_scenes", "at most \(SurfaceStore.sceneCap) scenes per account") }
                _ = try? await cache?.refresh()
                let counts = try await store.sceneCounts(account: account.id)[stored.scene]
                return try JSONResponse.encoded(view(account: account.id, stored, counts: counts), status: saved == .created ? .created : .ok)
            }
        }
        group.get("/accounts/:id/qrcodes", .channelsRead) { _, context in
            let account = try wechatAccount(context)
            return try await storage { try JSONResponse.encoded(try await report(account)) }
        }
        group.get("/accounts/:id/qrcodes/:scene", .channelsRead) { _, context in
            let account = try wechatAccount(context)
            var name = try context.parameters.require("scene")
            let png = name.hasSuffix(".png")
            if png { name.removeLast(4) }
            return try await storage {
                guard let scene = try await store.scene(account: account.id, name) else { throw APIError.notFound("QR scene") }
                guard png else {
                    return try JSONResponse.encoded(view(account: account.id, scene, counts: try await store.sceneCounts(account: account.id)[name]))
                }
                guard let url = scene.url, let image = try? QRCodePNG.render(url) else { throw APIError.notFound("QR code image") }
                return Response(
                    status: .ok,
                    headers: [.contentType: "image/png", .contentDisposition: "inline; filename=\"\(account.id)-\(name).png\"", .cacheControl: "private, max-age=300"],
                    body: .init(byteBuffer: ByteBuffer(bytes: image)))
            }
        }
        group.delete("/accounts/:id/qrcodes/:scene", .channelsWrite) { _, context in
            let account = try wechatAccount(context)
            let name = try context.parameters.require("scene")
            return try await storage {
                guard try await store.deleteScene(account: account.id, name) else { throw APIError.notFound("QR scene") }
                _ = try? await cache?.refresh()
                return Response(status: .noContent)
            }
        }
    }

    /// Stored scenes, the config file's, and counted scenes deleted since; newest codes first.
    func report(_ account: Account) async throws -> List {
        let stored = try await store.scenes(account: account.id)
        let counts = try await store.sceneCounts(account: account.id)
        var seen = Set(stored.map(\.scene))
        var views = stored.sorted { ($0.createdAt, $0.scene) > ($1.createdAt, $1.scene) }.map { view(account: account.id, $0, counts: counts[$0.scene]) }
        for (name, tag) in account.scenes.sorted(by: { $0.key < $1.key }) where !seen.contains(name) {
            seen.insert(name)
            let s = QRScene(
                scene: name, tags: [tag], owner: nil, permanent: true, expiresAt: nil, ticket: nil, url: nil, createdAt: 0, createdBy: "", source: "config")
            views.append(view(account: account.id, s, counts: counts[name]))
        }
        for name in counts.keys.sorted() where !seen.contains(name) {
            let s = QRScene(
                scene: name, tags: [], owner: nil, permanent: false, expiresAt: nil, ticket: nil, url: nil, createdAt: 0, createdBy: "", source: "deleted")
            views.append(view(account: account.id, s, counts: counts[name]))
        }
        var total = SurfaceStore.SceneCounts()
        for c in counts.values {
            total.scans += c.scans
            total.subscribes += c.subscribes
            total.unsubscribes += c.unsubscribes
        }
        return List(account: account.id, scenes: views, totals: Counts(total))
    }

    func validate(_ body: CreateBody) throws -> QRScene {
        guard QRScene.isValidName(body.scene) else { throw APIError.badRequest(QRScene.nameRule, code: "invalid_scene") }
        let tags = body.tags ?? []
        guard tags.count <= QRScene.maxTags else { throw APIError.badRequest("at most \(QRScene.maxTags) tags", code: "invalid_tags") }
        if let bad = tags.first(where: { !TagName.isValid($0) }) { throw APIError.badRequest("tag '\(bad)': \(TagName.rule)", code: "invalid_tags") }
        if let owner = body.owner, !QRScene.isValidOwner(owner) {
            throw APIError.badRequest("owner is 1 to 64 of letters, digits, . _ - @ (a WeCom UserID or an operator name)", code: "invalid_owner")
        }
        switch (body.permanent ?? false, body.expiresInSeconds) {
        case (true, nil): break
        case (false, let s?) where (QRScene.minTemporarySeconds...QRScene.maxTemporarySeconds).contains(s): break
        case (false, _?):
            throw APIError.badRequest(
                "expiresInSeconds is \(QRScene.minTemporarySeconds) to \(QRScene.maxTemporarySeconds) (30 days, WeChat's longest)", code: "invalid_expiry")
        default: throw APIError.badRequest("give either \"permanent\": true or \"expiresInSeconds\"", code: "invalid_expiry")
        }
        let now = clock()
        let permanent = body.permanent ?? false
        return QRScene(
            scene: body.scene, tags: tags.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }, owner: body.owner, permanent: permanent,
            expiresAt: permanent ? nil : now + Int64(body.expiresInSeconds ?? 0) * 1000, ticket: nil, url: nil, createdAt: now,
            createdBy: Principal.current?.actor ?? "", source: "api")
    }

    func wechatAccount(_ context: some RequestContext) throws -> Account {
        try WeChatFailure.account(config, context, platform: .wechat)
    }
}

/// Turns the failures of a WeChat API call into answers that say what to do, without internals.
enum WeChatFailure {
    static func apiError(_ error: any Error, account: String) -> any Error {
        switch error {
        case let e as APIError: return e
        case AccessTokenManager.TokenError.unknownAccount:
            return APIError(.conflict, "no_app_secret", "account \(account) has no appSecret configured, so the gateway cannot call WeChat for it")
        case let e as AccessTokenManager.TokenError:
            return APIError(.serviceUnavailable, "wechat_unavailable", "no access token for account \(account): \(e.description)")
        case let e as WeChatAPIClient.APIError where e.isQuota:
            return APIError(.tooManyRequests, "wechat_quota", "WeChat's daily quota for this call is spent (\(e.code)); it resets at midnight Beijing time")
        case let e as WeChatAPIClient.APIError:
            return APIError(.badGateway, "wechat_refused", "WeChat refused the call: \(e.code) \(e.message)")
        default:
            return APIError(.badGateway, "wechat_unreachable", "WeChat could not be reached; retry later")
        }
    }

    /// The `:id` account, which must exist and, when `platform` is given, be on it.
    static func account(_ config: GatewayConfig, _ context: some RequestContext, platform: Account.Platform?) throws -> Account {
        let id = try context.parameters.require("id")
        guard let account = config.account(id) else { throw APIError.notFound("account") }
        if let platform, account.platform != platform {
            throw APIError.badRequest("account \(id) is a \(account.platform.rawValue) account; this is for \(platform.rawValue) accounts", code: "wrong_platform")
        }
        return account
    }
}
