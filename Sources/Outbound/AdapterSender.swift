import GatewayCore
import GatewayCrypto
import HTTPTransport
import Store

/// Makes the provider call for one message: render by the adapter's spec, send through the shared
/// curl driver (or record it, for a sandbox adapter), and read the answer by the spec. WeChat calls get
/// the account's access token; when WeChat refuses it, the token is invalidated (if still cached) and
/// the call is made once more with a fresh one. Never throws: every failure comes back classified, so
/// the engine decides between retry, slow-down and dead letter.
public struct AdapterSender: Sendable {
    let transport: HTTPTransport
    let sandbox: SandboxOutbox
    let tokens: AccessTokenManager?
    /// Douyin enterprise accounts' tokens (`douyin-access-token` adapters).
    let douyinTokens: AccessTokenManager?
    let publicURL: String
    let clock: @Sendable () -> Int64

    /// The token a sandbox renders with: the real one never reaches a sandbox record.
    public static let sandboxAccessToken = "SANDBOX_ACCESS_TOKEN"

    public init(
        transport: HTTPTransport = .shared, sandbox: SandboxOutbox, tokens: AccessTokenManager? = nil, douyinTokens: AccessTokenManager? = nil,
        publicURL: String, clock: @escaping @Sendable () -> Int64
    ) {
        self.transport = transport
        self.sandbox = sandbox
        self.tokens = tokens
        self.douyinTokens = douyinTokens
        self.publicURL = publicURL
        self.clock = clock
    }

    public func send(_ payload: OutboundPayload, via adapter: ResolvedAdapter, unsubscribeURL: String? = nil) async -> SendOutcome {
        guard let kind = adapter.accessTokenKind else { return await attempt(payload, via: adapter, accessToken: nil, unsubscribeURL: unsubscribeURL) }
        if adapter.spec.isSandbox { return await attempt(payload, via: adapter, accessToken: Self.sandboxAccessToken, unsubscribeURL: unsubscribeURL) }
        guard let account = payload.account else {
            return .failed(SendFailure(errorClass: .permanent, code: "token", message: "a \(kind) message needs the account it goes out from"))
        }
        guard let tokens = kind == .douyin ? douyinTokens : tokens else {
            let what = kind == .douyin ? "refreshToken (douyin.accounts)" : "appSecret"
            return .failed(SendFailure(errorClass: .permanent, code: "token", message: "no \(what) configured for account \(account)"))
        }
        var token: String
        do { token = try await tokens.token(for: account) } catch { return .failed(Self.classify(error)) }
        let first = await attempt(payload, via: adapter, accessToken: token, unsubscribeURL: unsubscribeURL)
        guard case .failed(let f) = first, f.errorClass == .tokenExpired else { return first }
        await tokens.invalidate(account: account, failedToken: token)
        do { token = try await tokens.token(for: account) } catch { return .failed(Self.classify(error)) }
        let second = await attempt(payload, via: adapter, accessToken: token, unsubscribeURL: unsubscribeURL)
        if case .failed(let again) = second, again.errorClass == .tokenExpired {
            // Refused twice in a row: not a stale token but a configuration problem; retry later, not now.
            return .failed(SendFailure(errorClass: .retry, code: again.code, message: again.message, answer: again.answer))
        }
        return second
    }

    /// One call with a given token (nil when the adapter needs none).
    public func attempt(_ payload: OutboundPayload, via adapter: ResolvedAdapter, accessToken: String?, unsubscribeURL: String? = nil) async
        -> SendOutcome
    {
        let now = clock()
        let inputs = RenderInputs(
            nowMs: now, nonce: SecureRandom.alphanumeric(24), accessToken: accessToken,
            receiptURL: "\(publicURL)/webhooks/receipts/\(adapter.renders.name)", unsubscribeURL: unsubscribeURL)
        let request: RenderedRequest
        do {
            request = try adapter.render(payload, inputs)
        } catch {
            return .failed(SendFailure(errorClass: .permanent, code: "render", message: "\(error)"))
        }
        if adapter.spec.isSandbox {
            do {
                let id = try await sandbox.record(
                    channel: adapter.spec.channel.rawValue, adapter: adapter.spec.name, renders: adapter.renders.name, messageId: payload.messageId,
                    to: payload.to, transcript: request.transcript, atMs: now)
                return .accepted(providerId: "sandbox-" + id)
            } catch {
                return .failed(SendFailure(errorClass: .retry, code: "sandbox", message: "\(error)"))
            }
        }
        do {
            switch request {
            case .http(let r): return adapter.classify(try await transport.send(r), nowMs: clock())
            case .mail(let m):
                _ = try await transport.send(mail: m)
                return .accepted(providerId: nil)
            }
        } catch let error as TransportError {
            return .failed(ResolvedAdapter.classify(error))
        } catch {
            return .failed(SendFailure(errorClass: .retry, code: "transport", message: "\(error)"))
        }
    }

    static func classify(_ error: any Error) -> SendFailure {
        switch error {
        case AccessTokenManager.TokenError.budgetExhausted(let a):
            SendFailure(errorClass: .quota, code: "token-budget", message: "the daily access-token budget of \(a) is spent")
        case AccessTokenManager.TokenError.unknownAccount(let a):
            SendFailure(errorClass: .permanent, code: "token", message: "no WeChat app secret configured for account \(a)")
        // Another process is refreshing, or Redis is away: nothing to hold against the provider.
        case AccessTokenManager.TokenError.busy, AccessTokenManager.TokenError.unavailable:
            SendFailure(errorClass: .retry, code: "token-wait", message: "\(error)")
        case let e as AccessTokenManager.TokenError: SendFailure(errorClass: .retry, code: "token", message: e.description)
        case let e as TransportError: ResolvedAdapter.classify(e)
        default: SendFailure(errorClass: .retry, code: "token", message: "\(error)")
        }
    }
}

extension ResolvedAdapter {
    /// The request carries a WeChat access token.
    public var needsAccessToken: Bool { accessTokenKind == .wechat }

    public enum AccessTokenKind: String, Sendable { case wechat, douyin }

    /// Whose access token the request carries, if any.
    public var accessTokenKind: AccessTokenKind? {
        guard case .http(let h) = renders.kind else { return nil }
        switch h.auth {
        case .wechatAccessToken: return .wechat
        case .douyinAccessToken: return .douyin
        default: return nil
        }
    }

    /// The limit sends through this adapter keep: its own spec's. A sandbox calls no provider, so it
    /// has none unless its spec sets one.
    public var rateLimit: RateLimitSpec? { spec.rateLimit }

    /// How to verify this adapter's delivery callbacks: the format and its key, when the spec reads
    /// receipts and the key is set. Sandboxes receive none.
    public var receiptKey: (format: ReceiptSpec.Format, key: String)? {
        guard !spec.isSandbox, let r = spec.receipts, let key = settings[r.keySetting], !key.isEmpty else { return nil }
        return (r.format, key)
    }

    /// A resolved setting (e.g. `base_url`), nil when the spec has none.
    public func setting(named name: String) -> String? { settings[name] }
}
