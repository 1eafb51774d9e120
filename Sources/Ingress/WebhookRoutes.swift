import GatewayCore
import HTTPAPI
import Hummingbird
import Logging
import Metrics
import NIOCore
import RedisClient
import Store

/// `GET|POST /webhooks/wechat/{account}` and `/webhooks/wecom/{account}`.
///
/// Verify, then store everything in one atomic Redis script, then answer: "success", or the auto-reply
/// (encrypted for encrypted requests). A retry of a stored callback gets the reply of the first.
public struct WebhookRoutes: Sendable {
    let verifiers: [String: WebhookVerifier]
    let store: CustomerStore
    let receipts: ReceiptStore
    /// QR scenes and reply rules as changed at run time.
    let surfaces: SurfaceCache
    /// Queues a reply WeChat takes only as a customer-service message (a mini-program card): account,
    /// openid, content, idempotency key. nil: no customer-service adapter enabled, such replies are dropped.
    let customReply: CustomReplySender?
    let maxBodyBytes: Int
    let clock: @Sendable () -> Int64
    /// Counts what was stored, per account and type, for the dashboard.
    let activity: ActivityStats?
    let stored = Counter(label: "scrm_webhook_stored_total")
    let duplicates = Counter(label: "scrm_webhook_dedup_hits_total")
    /// Identical requests (same query and body) inside the window: answered as the first, stored once.
    let retries = Counter(label: "scrm_webhook_identical_retries_total")

    /// - Parameter clock: milliseconds since the epoch (tests move it).
    public init(
        config: GatewayConfig, store: CustomerStore, surfaces: SurfaceCache, customReply: CustomReplySender? = nil, activity: ActivityStats? = nil,
        clock: @escaping @Sendable () -> Int64
    ) {
        self.surfaces = surfaces
        self.customReply = customReply
        var verifiers = [String: WebhookVerifier]()
        for account in config.accounts { verifiers[account.id] = WebhookVerifier(account: account, windowSeconds: config.webhooks.timestampWindowSeconds) }
        self.verifiers = verifiers
        self.store = store
        self.receipts = ReceiptStore(redis: store.redis, customers: store, activity: activity)
        self.activity = activity
        self.maxBodyBytes = config.server.maxBodyBytes
        self.clock = clock
    }

    public func register<Context: RequestContext>(on router: DeclaredRoutes<Context>) {
        for platform in [Account.Platform.wechat, .wecom] {
            router.get("/webhooks/\(platform.rawValue)/:account", .public) { request, context in
                try await rejecting { try handshake(platform: platform, request: request, context: context) }
            }
            router.post("/webhooks/\(platform.rawValue)/:account", .public) { request, context in
                try await rejecting { try await callback(platform: platform, request: request, context: context) }
            }
        }
    }

    private func verifier(_ platform: Account.Platform, _ context: some RequestContext) throws -> WebhookVerifier {
        guard let id = context.parameters.get("account"), let v = verifiers[id], v.account.platform == platform else {
            throw APIError.notFound("account")
        }
        return v
    }

    func handshake(platform: Account.Platform, request: Request, context: some RequestContext) throws -> Response {
        let verifier = try verifier(platform, context)
        let echo = try verifier.handshake(query: Query(request.uri), now: clock() / 1000)
        return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: echo)))
    }

    func callback(platform: Account.Platform, request: Request, context: some RequestContext) async throws -> Response {
        let verifier = try verifier(platform, context)
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: maxBodyBytes)
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "body_too_large", "body exceeds \(maxBodyBytes) bytes")
        }
        let nowMs = clock()
        let verified = try verifier.verify(query: Query(request.uri), body: Array(buffer: body), now: nowMs / 1000)
        let message = verified.message
        let account = verifier.account.id
        var reply = ""
        // A mini-program card cannot be a passive reply: it goes as a customer-service message once stored.
        var card: WeChatContent?
        if let content = surfaces.replies(account: account)?.reply(to: message) {
            if let xml = ReplyXML.render(content, replyingTo: message, createTime: Int(nowMs / 1000)) { reply = xml } else { card = content }
        }
        let attribution = message.scene.flatMap { surfaces.attribution(account: account, scene: $0) }
        var plan = IngestPlan.make(
            message: message, account: verifier.account, nonceKey: verified.nonceKey, reply: reply, nowMs: nowMs, attribution: attribution)
        plan.fingerprint = verified.fingerprint
        let outcome: CustomerStore.IngestOutcome
        do {
            outcome = try await store.ingest(plan)
        } catch let error as RedisError {
            context.logger.error("webhook not stored", metadata: ["account": .string(verifier.account.id), "error": .string(error.description)])
            throw APIError.unavailable
        }
        switch outcome {
        case .replay:
            throw APIError(.forbidden, "replayed", "this timestamp, nonce and signature were already used for another request")
        case .retry(let first):
            retries.increment()
            reply = first
        case .duplicate(let first):
            duplicates.increment()
            reply = first
        case .stored:
            stored.increment()
            activity?.inbound(account: verifier.account.id, type: plan.interactionType, atMs: nowMs)
            if let receipt = ReceiptFormats.wechatTemplateJob(message) {
                // The callback is stored either way; a receipt that cannot be applied now is not worth a platform retry.
                _ = try? await receipts.apply(receipt, nowMs: nowMs)
            }
            if message.kind == .event("MASSSENDJOBFINISH") {
                // A mass send's outcome (a send of ours; others are only stored).
                _ = try? await MassSendStore(redis: store.redis).finish(account: account, message: message, nowMs: nowMs)
            }
        }
        if let card, let customReply, !message.fromUser.isEmpty {
            // Keyed by the callback, so a platform retry (or a second process) queues it once.
            do {
                try await customReply(account, message.fromUser, card, "reply:\(plan.dedupKey)")
            } catch {
                context.logger.error("card reply not queued", metadata: ["account": .string(account), "error": .string("\(error)")])
                throw APIError.unavailable
            }
        }
        if reply.isEmpty {
            return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: "success")))
        }
        let out = verified.encrypted ? try verifier.encryptReply(reply, now: nowMs / 1000) : reply
        return Response(status: .ok, headers: [.contentType: "application/xml; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: out)))
    }
}

public typealias CustomReplySender = @Sendable (_ account: String, _ openid: String, _ content: WeChatContent, _ key: String) async throws -> Void

/// Counts rejections by reason and turns unexpected errors into a bare 400, so a platform never sees a 5xx
/// for what it sent, nor our internals.
func rejecting(_ body: () async throws -> Response) async throws -> Response {
    do {
        return try await body()
    } catch let error as APIError {
        if error.status.code < 500 { Counter(label: "scrm_webhook_rejected_total", dimensions: [("reason", error.code)]).increment() }
        throw error
    } catch {
        Counter(label: "scrm_webhook_rejected_total", dimensions: [("reason", "invalid")]).increment()
        throw APIError.badRequest("request could not be processed", code: "invalid_request")
    }
}
