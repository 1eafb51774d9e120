/// The gateway's configuration: one typed value, read from `config/gateway.yaml` by `ConfigLoader`.
public struct GatewayConfig: Sendable {
    public struct Server: Sendable {
        public var host = "0.0.0.0"
        public var port = 8080
        /// Largest request body accepted, in bytes (webhooks and admin API).
        public var maxBodyBytes = 65_536
        /// A request must arrive whole (head and body) within this long of the connection opening or
        /// the previous response; slower connections (slow-loris) and idle keep-alives are closed.
        public var requestTimeoutSeconds = 10
        /// A second listener for /api/v1 and /metrics (nil = everything on `port`).
        public var adminPort: Int?
        public var adminHost = "127.0.0.1"
        /// Addresses of reverse proxies whose X-Forwarded-For names the client (for sign-in limits and logs).
        public var trustedProxies: [String] = []
    }

    public struct Redis: Sendable {
        public var url = "redis://127.0.0.1:6379"
        /// Redis Cluster seed nodes (`redis://...` of any of its nodes); when set, `url` is not used.
        public var cluster: [String] = []
        /// On a cluster, let replicas serve pipelines of read-only commands (a little stale).
        public var readFromReplicas = false
        /// On a cluster, writes are answered once this many of their master's online replicas have them.
        public var waitForReplicas = 1
        /// How long a write may wait for its replicas, in milliseconds; past it the write fails (503).
        public var replicaWaitMs = 200
        /// On a cluster, `stream:inbound` and the send queues are split into this many streams
        /// (`StreamPartitions`); the same on every gateway.
        public var streamPartitions = 6
        public var connections = 4
        public var connectTimeoutMs = 1000
        public var commandTimeoutMs = 2000
    }

    public struct Admin: Sendable {
        /// Bearer token for /api/v1; nil = the admin API refuses every call.
        public var token: String?
        /// Largest number of customer ids in one bulk tag request.
        public var maxBulkIds = 10_000
        /// How long audit log entries (`stream:audit`) are kept, in days.
        public var auditRetentionDays = 365
        /// An operator's console session ends after this long without a call, and in any case after sessionMaxHours.
        public var sessionIdleMinutes = 480
        public var sessionMaxHours = 24
        /// This many failed sign-ins lock the operator name for loginLockoutMinutes.
        public var loginMaxFailures = 5
        public var loginLockoutMinutes = 15
        /// Sign-in attempts accepted per client address per minute.
        public var loginAttemptsPerMinute = 20
    }

    public struct Privacy: Sendable {
        /// Key of the keyed hash (HMAC-SHA256) that opt-out and erasure suppression entries are stored
        /// under, so that Redis never holds an opted-out address in the clear. nil: only allowed in dev
        /// (`AddressSuppression.devKey`); the gateway refuses to start without it otherwise.
        public var suppressionKey: String?
    }

    public struct Webhooks: Sendable {
        public var timestampWindowSeconds = 300
        public var dedupTTLSeconds = 600
        public var nonceTTLSeconds = 900
        /// Largest batch of provider or CRM events accepted (SendGrid posts up to 768 KB), read before the signature is checked.
        public var receiptMaxBodyBytes = 1_048_576
        /// Store each callback as a chain of single-slot steps, as on a Redis Cluster (always there),
        /// on a single Redis too: to try a cluster's behaviour first. Costs four round trips more.
        public var ingestInSteps = false
    }

    public struct Customers: Sendable {
        public var timelineCap = 500
        /// The profile attributes customers may carry, typed (`customers.attributes`).
        public var attributes = CustomerAttributes()
        /// Largest import body (`POST /api/v1/customers/import`, streamed; not `server.maxBodyBytes`).
        public var importMaxBytes = 1 << 30
    }

    public struct Sessions: Sendable {
        public var messageCap = 50
        public var windowHours = 48
    }

    public struct Streams: Sendable {
        public var inboundMaxLen = 1_000_000
    }

    public struct Outbound: Sendable {
        /// Folder of adapter specs; every spec in it is validated at start-up.
        public var adaptersDir = "adapters"
        /// The adapter each channel (wechat, sms, email) uses when a message names none.
        public var channels = ["wechat": "sandbox-wechat-template", "sms": "sandbox-sms", "email": "sandbox-email"]
        /// Further adapters a message may name (e.g. wechat-custom).
        public var extraAdapters = ["sandbox-wechat-custom"]
        /// This gateway's public base URL, for receipt callbacks and unsubscribe links.
        public var publicURL = "http://127.0.0.1:8080"
        /// Sandbox records kept per channel (newest).
        public var sandboxMaxLen = 10_000
        /// The WeCom API host (customer contact: external contacts, welcome messages, group sends).
        public var wecomApiBase = "https://qyapi.weixin.qq.com"
        /// Key for signed unsubscribe links (>= 16 characters); nil = no links, so marketing email
        /// (whose specs require one) is skipped.
        public var linkSecret: String?
        /// The version of `linkSecret` that new link tokens carry, and earlier secrets by version (their
        /// tokens still verify: links already sent keep working while the secret rotates).
        public var linkSecretVersion = 1
        public var retiredLinkSecrets: [Int: String] = [:]
        /// Senders (provider calls in flight) per channel in this process; 0 = this process only accepts.
        public var concurrency = 32
        /// Retries back off from this delay, doubling up to the cap, with jitter.
        public var retryBaseMs: Int64 = 2_000
        public var retryCapMs: Int64 = 600_000
        /// A message not sent after this long is dead-lettered.
        public var maxAgeHours = 24
        /// A queue entry held this long by a silent process is taken over.
        public var claimIdleSeconds = 60
        /// A journey step claimed by a process that died is run by another after this long.
        public var journeyLeaseSeconds = 30
        /// Provider failures in a row (5xx, timeouts) that open an adapter's circuit; it stays open
        /// circuitOpenMs, then one probe call goes; each failed probe doubles the spell up to the max.
        public var circuitFailures = 5
        public var circuitOpenMs: Int64 = 2_000
        public var circuitMaxOpenMs: Int64 = 30_000

        /// Every adapter this gateway may send through.
        public var enabledAdapters: Set<String> { Set(channels.values).union(extraAdapters) }
    }

    /// Syncing qualified leads to CRMs (specs in `specsDir`).
    public struct CRM: Sendable {
        /// The CRM adapters qualified customers are synced to; empty = no CRM sync.
        public var adapters: [String] = []
        public var specsDir = "adapters/crm"
        /// Timeline entries sent with each customer (its recent interactions).
        public var recentInteractions = 20
        /// Batches on the wire per adapter in this process.
        public var concurrency = 2
        /// A customer whose batch failed this many times is dead-lettered.
        public var maxAttempts = 8
        public var retryBaseMs: Int64 = 5_000
        public var retryCapMs: Int64 = 600_000
        /// A batch not answered within this long (a stopped process) goes back to the queue.
        public var leaseSeconds = 120
        /// Inbound CRM webhooks older than this are refused (replay).
        public var webhookWindowSeconds = 300
    }

    /// Signed form leads pushed to `POST /webhooks/leads/{source}` (landing pages, form tools, ad
    /// platforms' lead forms).
    public struct Leads: Sendable {
        public struct Source: Sendable, Equatable {
            /// The `{source}` of the URL, and the lead's `data.source`.
            public var id: String
            /// HMAC-SHA256 key of the `SCRM-Signature` header (`t=<unix s>,v1=<hex of HMAC(secret, "<t>.<body>")>`).
            public var secret: String

            public init(id: String, secret: String) {
                self.id = id
                self.secret = secret
            }
        }

        public var sources: [Source] = []
        /// A signature older (or newer) than this is refused; a signature seen within twice this is a replay.
        public var windowSeconds = 300
        /// The most bytes of one request.
        public var maxBodyBytes = 256 * 1024
    }

    /// Douyin enterprise accounts whose private messages and follows come to `POST /webhooks/douyin/{id}`.
    public struct Douyin: Sendable {
        public struct Account: Sendable, Equatable {
            /// The `{id}` of the URL; scopes the `douyin` identities (`douyin:<id>:<open_id>`).
            public var id: String
            /// The open-platform app's `client_key` (events for another app are refused).
            public var clientKey: String
            /// The app's `client_secret`: `X-Douyin-Signature` is the hex SHA-1 of it and the body.
            public var clientSecret: String
            /// The enterprise account's own open_id, and the refresh token of its authorization of the
            /// app (im.direct_message): replies through `douyin-im` need both. Empty = receive only.
            public var openId = ""
            public var refreshToken = ""

            public init(id: String, clientKey: String, clientSecret: String, openId: String = "", refreshToken: String = "") {
                self.id = id
                self.clientKey = clientKey
                self.clientSecret = clientSecret
                self.openId = openId
                self.refreshToken = refreshToken
            }

            /// Replies can go out from it.
            public var canReply: Bool { !openId.isEmpty && !refreshToken.isEmpty }
        }

        public var accounts: [Account] = []
        /// An event whose own time (create_time, action_time) is further than this from now is refused.
        public var windowSeconds = 600

        public func account(_ id: String) -> Account? { accounts.first { $0.id == id } }
    }

    public var server = Server()
    public var redis = Redis()
    public var admin = Admin()
    public var webhooks = Webhooks()
    public var privacy = Privacy()
    public var customers = Customers()
    public var sessions = Sessions()
    public var streams = Streams()
    public var outbound = Outbound()
    /// Frequency caps, quiet hours and the default time zone for marketing messages.
    public var contactRules = ContactRules()
    /// The lead-scoring rules file (`ScoringRules`); nil = no scoring.
    public var scoringRules: String?
    public var crm = CRM()
    public var leads = Leads()
    public var douyin = Douyin()
    public var accounts: [Account] = []

    public init() {}

    public func account(_ id: String) -> Account? { accounts.first { $0.id == id } }
}

/// A WeChat Official Account or a WeCom corp app whose callbacks we receive.
public struct Account: Sendable {
    public enum Platform: String, Sendable { case wechat, wecom }
    public enum Mode: String, Sendable {
        /// Plain XML, `signature` only.
        case plain
        /// Plain and encrypted requests both accepted.
        case compat
        /// Encrypted requests only.
        case safe
    }

    public var id: String
    public var platform: Platform
    /// WeChat appId, or the WeCom corpId: the trailer every encrypted payload must carry.
    public var appId: String
    public var token: String
    /// The AppSecret, for access tokens (outbound API calls); nil = this account only receives.
    public var appSecret: String?
    public var encodingAESKey: String?
    public var mode: Mode
    /// Time zone of this account's followers (quiet hours), nil = `contactRules.timezone`.
    public var timezone: String?
    /// QR scene -> tag added on subscribe/SCAN with that scene.
    public var scenes: [String: String]
    public var autoReplies: [AutoReplyRule]
    /// How many mass sends (`message/mass/sendall`) WeChat allows the account: a service account 4 a
    /// month, a subscription account 1 a day. Enforced before calling.
    public var massSend = MassSendQuota(period: .month, limit: 4)

    public init(
        id: String, platform: Platform, appId: String, token: String, encodingAESKey: String?, mode: Mode,
        scenes: [String: String] = [:], autoReplies: [AutoReplyRule] = [], appSecret: String? = nil
    ) {
        self.id = id
        self.platform = platform
        self.appId = appId
        self.token = token
        self.appSecret = appSecret
        self.encodingAESKey = encodingAESKey
        self.mode = mode
        self.scenes = scenes
        self.autoReplies = autoReplies
    }
}

/// A keyword rule of the config file: the initial `ReplyRules` of the account (a text reply).
public struct AutoReplyRule: Sendable {
    public enum Match: String, Sendable { case prefix, exact, contains }
    public var match: Match
    public var keyword: String
    public var caseSensitive: Bool
    public var reply: String

    public init(match: Match, keyword: String, caseSensitive: Bool = false, reply: String) {
        self.match = match
        self.keyword = keyword
        self.caseSensitive = caseSensitive
        self.reply = reply
    }
}

