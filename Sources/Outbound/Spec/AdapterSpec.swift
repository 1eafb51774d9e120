import GatewayCore
import Store

/// One provider, as `adapters/<name>.yaml` describes it: how a message becomes a request, how the
/// answer is read, and how fast the provider may be called. Parsed by `AdapterSpecParser`; secrets are
/// only names of environment variables until `AdapterCatalog` resolves the adapters in use.
public struct AdapterSpec: Sendable {
    /// douyin: private-message replies of a Douyin enterprise account (to a `douyin` identity).
    public enum Channel: String, Sendable, CaseIterable { case wechat, sms, email, douyin }

    public let name: String
    /// The file it came from, for error messages.
    public let file: String
    public let channel: Channel
    public let summary: String
    let settings: [String: SettingSource]
    public let rateLimit: RateLimitSpec?
    /// Customer-service messages: only within this many hours of the follower's last interaction.
    public let sessionWindowHours: Int?
    /// The provider drops a repeat of the same message id within this window (WeChat's
    /// `client_msg_id`: 10 minutes), so a send whose outcome a crash made unknown may be repeated
    /// inside it. nil: never repeat an unknown outcome.
    public let providerDedupMs: Int64?
    /// How the provider's delivery callbacks to `/webhooks/receipts/{name}` are read and verified.
    public let receipts: ReceiptSpec?
    /// How to ask the provider whether it took a message whose send was left in doubt (a crash or a
    /// timeout mid-call): nil when the provider offers no lookup.
    let lookup: LookupSpec?
    let kind: Kind

    enum Kind: Sendable {
        case http(HTTPPart)
        case smtp(SMTPPart)
        case sandbox(SandboxPart)
    }

    public var isSandbox: Bool {
        if case .sandbox = kind { return true }
        return false
    }

    /// The spec whose request a sandbox adapter renders, nil for real adapters.
    public var sandboxTarget: String? {
        if case .sandbox(let s) = kind { return s.renders }
        return nil
    }
}

public struct ReceiptSpec: Sendable {
    public enum Format: String, Sendable, CaseIterable {
        /// Status callback, form-encoded, `X-Twilio-Signature` (HMAC-SHA1 with the auth token).
        case twilio
        /// Event Webhook, JSON array, ECDSA P-256 signature over timestamp + body.
        case sendgrid
    }

    public let format: Format
    /// The setting holding the verification key (auth token, or the base64 public key).
    let keySetting: String
}

/// A setting's value: text (with `${VAR:-default}` expanded when the adapter is enabled) or `env:NAME`.
enum SettingSource: Sendable, Equatable {
    case text(String)
    case env(String)
}

public struct RateLimitSpec: Sendable, Equatable {
    public enum Scope: String, Sendable, CaseIterable {
        /// One budget for the whole adapter.
        case adapter
        /// One budget per WeChat account (the platform's quotas are per appid).
        case account
        /// One budget per sending number or address.
        case sender
    }

    public let limit: RateLimit
    public let scope: Scope
}

struct HTTPPart: Sendable {
    let method: String
    let url: TextTemplate
    let query: [(String, BodyTemplate)]
    let headers: [(String, TextTemplate)]
    let body: Body?
    let auth: Auth
    let timeoutMs: Int
    let response: ResponseSpec

    struct Body: Sendable {
        enum Format: String, Sendable, CaseIterable { case json, form }
        let format: Format
        let fields: BodyTemplate
    }

    enum Auth: Sendable {
        case none
        /// `Authorization: Bearer <setting>`.
        case bearer(token: String)
        /// `Authorization: Basic base64(<user setting>:<password setting>)`.
        case basic(username: String, password: String)
        /// The setting's value as a query parameter.
        case queryToken(parameter: String, token: String)
        /// `access_token=<the account's token>` from the access-token manager (WeChat).
        case wechatAccessToken
        /// `access-token: <the Douyin enterprise account's token>` from its access-token manager
        /// (refreshed with the account's refresh token).
        case douyinAccessToken
        /// Alibaba Cloud RPC: common parameters plus an HMAC-SHA1 over the sorted, encoded parameters.
        case hmacSHA1SortedParams(keyId: String, secret: String)

        /// Settings this auth reads (they must come from the environment).
        var secretSettings: [String] {
            switch self {
            case .none, .wechatAccessToken, .douyinAccessToken: []
            case .bearer(let t): [t]
            case .basic(let u, let p): [u, p]
            case .queryToken(_, let t): [t]
            case .hmacSHA1SortedParams(let k, let s): [k, s]
            }
        }
    }
}

struct SMTPPart: Sendable {
    let server: TextTemplate
    /// none, starttls or tls; a template so a setting can choose it.
    let security: TextTemplate
    let username: String?
    let password: String?
    let from: TextTemplate
    let fromName: TextTemplate?
    let replyTo: TextTemplate?
    let subject: TextTemplate
    let text: TextTemplate
    let html: TextTemplate?
    /// Adds `List-Unsubscribe` (+ RFC 8058 one-click) from these templates.
    let unsubscribeURL: TextTemplate?
    let unsubscribeMailto: TextTemplate?
    let timeoutMs: Int
}

struct SandboxPart: Sendable {
    /// The real adapter whose request is rendered and recorded instead of sent.
    let renders: String
    /// Values for the rendered spec's settings; its `env:` secrets become placeholders.
    let settings: [String: String]
}

/// A provider's list of the messages it took, asked after a send left in doubt (Twilio's message list
/// by `To`): the message was seen when an item of `list` has every `match` field equal to its rendered
/// value (and, with `createdAt`, was created after the doubtful call began).
struct LookupSpec: Sendable {
    let request: HTTPPart
    /// JSON path of the array of messages in the answer.
    let list: String
    /// Item field -> the value it must have (a template over the message, as the send's).
    let match: [(String, TextTemplate)]
    /// Item field holding the provider's id.
    let providerId: String
    /// Item field holding when the provider took the message (RFC 2822 or ISO 8601).
    let createdAt: String?
}

/// How a provider's answer is read.
struct ResponseSpec: Sendable {
    var successStatus: [StatusPattern] = [.range(2)]
    /// A JSON field that must equal one of `successValues` (WeChat: `errcode` == 0); a missing field
    /// counts as success only when `successWhenMissing`.
    var successField: String?
    var successValues: [String] = []
    var successWhenMissing = false
    var providerId: FieldRef?
    var errorCode: FieldRef?
    var errorMessage: FieldRef?
    var errors: [ErrorRule] = []
    var otherwise: ErrorClass = .permanent
}

enum FieldRef: Sendable, Equatable {
    case json(String)
    case header(String)
}

enum StatusPattern: Sendable, Equatable {
    case exact(Int)
    /// `5xx` is `.range(5)`.
    case range(Int)

    func matches(_ status: Int) -> Bool {
        switch self {
        case .exact(let s): status == s
        case .range(let h): status / 100 == h
        }
    }
}

struct ErrorRule: Sendable {
    let status: [StatusPattern]?
    let codes: [String]?
    let errorClass: ErrorClass

    func matches(status: Int, code: String?) -> Bool {
        if let s = self.status, !s.contains(where: { $0.matches(status) }) { return false }
        if let c = codes {
            guard let code, c.contains(code) else { return false }
        }
        return true
    }
}

/// What a failed send means for the engine.
public enum ErrorClass: String, Sendable, CaseIterable {
    /// Transient: back off and try again.
    case retry
    /// The provider asks us to slow down (429, throttle codes); honour Retry-After.
    case throttle
    /// The access token was refused: refresh it if it is still the cached one, then retry once.
    case tokenExpired = "token_expired"
    /// A quota is spent (WeChat 45009, an empty SMS balance): stop this API until it resets.
    case quota
    /// Will never succeed as it is (bad template, bad credentials): dead-letter it.
    case permanent
    /// The recipient opted out with the provider (Twilio 21610 after STOP, WeChat 43004 not
    /// following): recorded as the address's and the customer's opt-out, so nothing is sent again.
    case optedOut = "opted_out"
    /// The address cannot receive (an invalid number or openid, a hard bounce): a recipient reason,
    /// not the message's fault.
    case badAddress = "bad_address"
    /// The provider's own dedup recognised the message (WeChat 45065 "clientmsgid exist"): an earlier
    /// call, whose answer a crash lost, did send it. Recorded as sent.
    case duplicate
}
