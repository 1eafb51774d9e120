import GatewayCore
import HTTPAPI
import Hummingbird
import Ingress
import NIOCore
import Outbound
import Store

/// `POST /api/v1/accounts/{id}/media?type=image|thumb`: uploads a picture as WeChat temporary media
/// (`media/upload`) and answers its media id, for image replies and messages and mini-program card
/// thumbs. The body is the file itself (JPEG, PNG or GIF; a thumb is a JPEG of at most 64 KB). The
/// same file again within WeChat's 3 days answers the cached id without calling WeChat.
struct MediaRoutes {
    let config: GatewayConfig
    let store: SurfaceStore
    let wechat: any WeChatSurfaces
    let clock: @Sendable () -> Int64

    struct View: Encodable {
        let mediaId: String
        let type: String
        let expiresAt: String
        /// Answered from the cache: this file was uploaded before.
        let cached: Bool
        let sandbox: Bool
    }

    func register<Context: RequestContext>(on group: DeclaredRoutes<Context>) {
        group.post("/accounts/:id/media", .channelsWrite) { request, context in
            let account = try WeChatFailure.account(config, context, platform: .wechat)
            guard let kind = WeChatMedia.Kind(rawValue: request.uri.queryParameters.get("type").map { String($0) } ?? "image") else {
                throw APIError.badRequest("type is image or thumb", code: "invalid_type")
            }
            let buffer: ByteBuffer
            do {
                buffer = try await request.body.collect(upTo: kind.maxBytes)
            } catch is NIOTooManyBytesError {
                throw APIError(.contentTooLarge, "body_too_large", "a \(kind.rawValue) is at most \(kind.maxBytes / 1024) KB")
            }
            let bytes = Array(buffer: buffer)
            if let problem = WeChatMedia.problem(bytes, kind: kind) { throw APIError.badRequest(problem, code: "invalid_media") }
            let hash = WeChatMedia.contentHash(bytes)
            return try await storage {
                let now = clock()
                if let (id, ttl) = try await store.cachedMedia(account: account.id, kind: kind.rawValue, hash: hash) {
                    return try JSONResponse.encoded(
                        View(mediaId: id, type: kind.rawValue, expiresAt: JSONResponse.isoTime(now + ttl), cached: true, sandbox: wechat.isSandbox))
                }
                let id: String
                do {
                    id = try await wechat.uploadMedia(account: account.id, kind: kind, bytes: bytes, format: WeChatMedia.sniff(bytes) ?? .jpeg)
                } catch { throw WeChatFailure.apiError(error, account: account.id) }
                try await store.cacheMedia(account: account.id, kind: kind.rawValue, hash: hash, mediaId: id, ttlMs: WeChatMedia.cacheMs)
                return try JSONResponse.encoded(
                    View(mediaId: id, type: kind.rawValue, expiresAt: JSONResponse.isoTime(now + WeChatMedia.cacheMs), cached: false, sandbox: wechat.isSandbox),
                    status: .created)
            }
        }
    }
}
