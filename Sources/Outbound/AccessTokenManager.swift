import GatewayCore
import GatewayCrypto
import Store
import HTTPTransport
import Metrics
import RedisClient
import NIOConcurrencyHelpers

/// WeChat access tokens, one per account, shared by every gateway process through Redis.
///
/// - One process refreshes at a time: it holds `token:{account}:lock`, whose value is a fence from
///   `INCR`; the new token is stored only if the lock still holds that fence when it is written, so a
///   holder that stalled past its lease cannot overwrite a newer token.
/// - `stable_token` by default: a plain fetch returns the current token and invalidates nobody's.
///   After WeChat refuses a token (40001/40014/42001), `invalidate` marks it stale only if it is still
///   the cached one, and the next refresh asks `force_refresh`.
/// - Fetches are counted per Beijing day against the 2,000/day budget (metric
///   `scrm_wechat_token_fetches_today`); at the budget, no more fetches.
/// - Without Redis, each process keeps using its last token until it expires, and fetches on its own at
///   most once per `outageFetchIntervalMs`, one fetch at a time: an outage cannot become a stampede.
public final class AccessTokenManager: Sendable {
    public struct Credentials: Sendable {
        public let account: String
        public let appId: String
        public let secret: String

        public init(account: String, appId: String, secret: String) {
            self.account = account
            self.appId = appId
            self.secret = secret
        }
    }

    public enum TokenError: Error, Equatable, CustomStringConvertible {
        case unknownAccount(String)
        case budgetExhausted(String)
        /// WeChat refused the fetch (wrong secret, IP not whitelisted...).
        case fetchFailed(code: String, message: String)
        /// Another process is refreshing and no token appeared in time; try again shortly.
        case busy(String)
        /// Redis is unreachable, this process has no token and fetched too recently to fetch again.
        case unavailable(String)

        public var description: String {
            switch self {
            case .unknownAccount(let a): "no WeChat app secret configured for account \(a)"
            case .budgetExhausted(let a): "the daily access-token budget of account \(a) is spent"
            case .fetchFailed(let code, let message): "access-token fetch refused: \(code) \(message)"
            case .busy(let a): "another process is refreshing the token of \(a)"
            case .unavailable(let a): "Redis is unreachable and account \(a) has no usable token yet"
            }
        }
    }

    public struct Settings: Sendable {
        public var dailyBudget = 2000
        /// Refresh this long before WeChat's expiry.
        public var refreshMarginMs: Int64 = 300_000
        /// Douyin: renew the refresh token (30 days) once less than this is left of it.
        public var renewRefreshMarginMs: Int64 = 7 * 86_400_000
        /// How long a process trusts its in-memory copy before looking at Redis again.
        public var localTTLms: Int64 = 60_000
        public var lockTTLms: Int64 = 10_000
        public var outageFetchIntervalMs: Int64 = 30_000

        public init() {}
    }

    private struct Cached {
        var token: String
        var expiresAtMs: Int64
        var checkedAtMs: Int64
    }

    private struct Local {
        var cached: [String: Cached] = [:]
        var inFlight: [String: Task<String, any Error>] = [:]
        var lastOutageFetchMs: [String: Int64] = [:]
    }

    /// How tokens are fetched: an Official Account's `stable_token` (appid + secret), WeCom's
    /// `gettoken` (corpid + the app's secret), or Marketo's OAuth client credentials
    /// (`GET /identity/oauth/token`, client id + client secret; a token lives about an hour), or a
    /// Douyin enterprise account's business token (`POST /oauth/refresh_token/`, the app's client key +
    /// the account's refresh token from its authorization; a token lives 15 days, `data.*` in the answer).
    public enum Flavor: Sendable { case officialAccount, wecom, marketo, douyin }

    private let shared: AccessTokenStore
    private let transport: HTTPTransport
    private let baseURL: String
    private let flavor: Flavor
    private let credentials: [String: Credentials]
    private let settings: Settings
    private let clock: @Sendable () -> Int64
    private let local = NIOLockedValueBox(Local())

    public init(
        redis: RedisPool, transport: HTTPTransport = .shared, baseURL: String, accounts: [Credentials], settings: Settings = Settings(),
        flavor: Flavor = .officialAccount, clock: @escaping @Sendable () -> Int64
    ) {
        shared = AccessTokenStore(redis: redis)
        self.flavor = flavor
        self.transport = transport
        self.baseURL = baseURL
        self.credentials = Dictionary(accounts.map { ($0.account, $0) }, uniquingKeysWith: { $1 })
        self.settings = settings
        self.clock = clock
    }

    /// A usable token for `account`; at most one refresh per account at a time in this process, and
    /// (through the lock) across processes.
    public func token(for account: String) async throws -> String {
        guard credentials[account] != nil else { throw TokenError.unknownAccount(account) }
        let now = clock()
        enum Step {
            case cached(String)
            case wait(Task<String, any Error>)
        }
        let step: Step = local.withLockedValue { l in
            if let c = l.cached[account], c.expiresAtMs - settings.refreshMarginMs > now, now - c.checkedAtMs < settings.localTTLms {
                return .cached(c.token)
            }
            if let running = l.inFlight[account] { return .wait(running) }
            let t = Task { try await self.load(account) }
            l.inFlight[account] = t
            return .wait(t)
        }
        switch step {
        case .cached(let token): return token
        case .wait(let task):
            defer { local.withLockedValue { l in if l.inFlight[account] == task { l.inFlight[account] = nil } } }
            return try await task.value
        }
    }

    /// WeChat refused `failedToken`: forget it here, and mark it stale in Redis only if it is still the
    /// cached one (a newer token from another process stays).
    public func invalidate(account: String, failedToken: String) async {
        local.withLockedValue { l in if l.cached[account]?.token == failedToken { l.cached[account] = nil } }
        try? await shared.markStale(account: account, token: failedToken)
    }

    /// The accounts this manager holds credentials for, and their daily fetch budget.
    public var accounts: [String] { credentials.keys.sorted() }
    public var dailyBudget: Int { settings.dailyBudget }

    /// Douyin: when the refresh token in use expires (as the last refresh said); nil before the first
    /// refresh, and for other flavors.
    public func refreshTokenExpiresAt(_ account: String) async throws -> Int64? {
        guard flavor == .douyin else { return nil }
        return try await shared.refreshToken(account: account)?.expiresAtMs
    }

    /// Fetches counted today (Beijing time) for `account`.
    public func fetchesToday(_ account: String) async throws -> Int {
        try await shared.fetches(account: account, day: beijingDay())
    }

    // MARK: -

    private func load(_ account: String) async throws -> String {
        do {
            return try await loadShared(account)
        } catch let error as RedisError where error.kind == .connection || error.kind == .shutdown {
            return try await loadWithoutRedis(account)
        }
    }

    private func loadShared(_ account: String) async throws -> String {
        if let fresh = try await readShared(account).fresh { return remember(account, fresh) }
        guard let fence = try await shared.lock(account: account, ttlMs: settings.lockTTLms) else { return try await waitForHolder(account) }
        do {
            let token = try await refreshHoldingLock(account, fence: fence)
            try? await shared.unlock(account: account, fence: fence)
            return token
        } catch {
            try? await shared.unlock(account: account, fence: fence)
            throw error
        }
    }

    private func refreshHoldingLock(_ account: String, fence: Int) async throws -> String {
        // Someone may have stored a token between our read and our lock.
        let now = try await readShared(account)
        if let fresh = now.fresh { return remember(account, fresh) }
        let day = beijingDay()
        let spent = try await shared.fetches(account: account, day: day)
        guard spent < settings.dailyBudget else { throw TokenError.budgetExhausted(account) }
        let count = try await shared.countFetch(account: account, day: day)
        Gauge(label: "scrm_wechat_token_fetches_today", dimensions: [("account", account)]).record(count)

        let fetched = try await fetch(account, forceRefresh: now.stale)
        if flavor == .douyin { await keepRefreshTokenAlive(account, fetched, fence: fence) }
        let stored = try await shared.storeIfHolder(account: account, token: fetched.token, expiresAtMs: fetched.expiresAtMs, fence: fence)
        if !stored, let fresh = try await readShared(account).fresh {
            // Our lease ran out and another holder took over: its token wins (ours stays valid for now).
            return remember(account, fresh)
        }
        return remember(account, fetched)
    }

    private func waitForHolder(_ account: String) async throws -> String {
        let deadline = clock() + settings.lockTTLms
        while clock() < deadline {
            try await Task.sleep(for: .milliseconds(25))
            if let fresh = try await readShared(account).fresh { return remember(account, fresh) }
        }
        throw TokenError.busy(account)
    }

    private func loadWithoutRedis(_ account: String) async throws -> String {
        let now = clock()
        let decision: (String?, Bool) = local.withLockedValue { l in
            if let c = l.cached[account], c.expiresAtMs > now { return (c.token, false) }
            if let last = l.lastOutageFetchMs[account], now - last < settings.outageFetchIntervalMs { return (nil, false) }
            l.lastOutageFetchMs[account] = now
            return (nil, true)
        }
        if let token = decision.0 { return token }
        guard decision.1 else { throw TokenError.unavailable(account) }
        return remember(account, try await fetch(account, forceRefresh: false))
    }

    private struct Fetched {
        let token: String
        let expiresAtMs: Int64
        /// Douyin: the refresh token the answer names and when it expires.
        var refreshToken: String?
        var refreshExpiresAtMs: Int64?
    }

    /// The shared token if it is fresh (not stale, not within the refresh margin of its expiry), and
    /// whether WeChat refused the stored one.
    private func readShared(_ account: String) async throws -> (fresh: Fetched?, stale: Bool) {
        let s = try await shared.read(account: account)
        guard let token = s.token, let expires = s.expiresAtMs, !s.stale, expires - settings.refreshMarginMs > clock() else { return (nil, s.stale) }
        return (Fetched(token: token, expiresAtMs: expires), false)
    }

    private func remember(_ account: String, _ f: Fetched) -> String {
        let now = clock()
        local.withLockedValue { $0.cached[account] = Cached(token: f.token, expiresAtMs: f.expiresAtMs, checkedAtMs: now) }
        return f.token
    }

    private func fetch(_ account: String, forceRefresh: Bool) async throws -> Fetched {
        guard let c = credentials[account] else { throw TokenError.unknownAccount(account) }
        let body = JSONValue.object([
            "grant_type": .string("client_credential"), "appid": .string(c.appId), "secret": .string(c.secret), "force_refresh": .bool(forceRefresh),
        ])
        let started = clock()
        // Douyin: the refresh token as last renewed, else the configured one (also when the configured one
        // changed since: the account authorized the app again).
        let kept = flavor == .douyin ? (try? await shared.refreshToken(account: account)) ?? nil : nil
        let renewed = kept.flatMap { $0.origin == Self.origin(c.secret) ? $0.token : nil }
        let (id, secret) = (ResolvedAdapter.percentEncode(c.appId), ResolvedAdapter.percentEncode(renewed ?? c.secret))
        let request: HTTPRequest = switch flavor {
        case .wecom: HTTPRequest(method: "GET", url: baseURL + "/cgi-bin/gettoken?corpid=\(id)&corpsecret=\(secret)", headers: [], body: [], timeoutMs: 5000)
        case .marketo:
            HTTPRequest(
                method: "GET", url: baseURL + "/identity/oauth/token?grant_type=client_credentials&client_id=\(id)&client_secret=\(secret)", headers: [], body: [],
                timeoutMs: 5000)
        case .douyin:
            HTTPRequest(
                method: "POST", url: baseURL + "/oauth/refresh_token/", headers: [("Content-Type", "application/x-www-form-urlencoded")],
                body: Array("client_key=\(id)&grant_type=refresh_token&refresh_token=\(secret)".utf8), timeoutMs: 5000)
        case .officialAccount:
            HTTPRequest(
                method: "POST", url: baseURL + "/cgi-bin/stable_token", headers: [("Content-Type", "application/json")], body: Array(body.text.utf8),
                timeoutMs: 5000)
        }
        let response = try await transport.send(request)
        var json = JSONValue.parse(response.body)
        if flavor == .douyin { json = json?.lookup("data") }  // {"data": {access_token, expires_in, error_code, description}, "message"}
        guard response.status == 200, let token = json?.lookup("access_token")?.scalarText, !token.isEmpty,
            let seconds = json?.lookup("expires_in")?.scalarText.flatMap({ Int64($0) })
        else {
            Counter(label: "scrm_wechat_token_fetches_total", dimensions: [("account", account), ("result", "error")]).increment()
            // WeChat: {errcode, errmsg}; OAuth (Marketo): {error, error_description}.
            throw TokenError.fetchFailed(
                code: (json?.lookup("errcode") ?? json?.lookup("error") ?? json?.lookup("error_code"))?.scalarText ?? "http \(response.status)",
                message: (json?.lookup("errmsg") ?? json?.lookup("error_description") ?? json?.lookup("description"))?.scalarText ?? "")
        }
        Counter(label: "scrm_wechat_token_fetches_total", dimensions: [("account", account), ("result", "ok")]).increment()
        var fetched = Fetched(token: token, expiresAtMs: started + seconds * 1000)
        if flavor == .douyin {
            fetched.refreshToken = json?.lookup("refresh_token")?.scalarText ?? renewed ?? c.secret
            fetched.refreshExpiresAtMs = json?.lookup("refresh_expires_in")?.scalarText.flatMap { Int64($0) }.map { started + $0 * 1000 }
        }
        return fetched
    }

    /// Which configured refresh token a kept one descends from (a digest: the configured secret itself is
    /// not copied into Redis).
    static func origin(_ configured: String) -> String { Hex.encode(Digest.sha256(Array(configured.utf8))) }

    /// Douyin: records the refresh token in use and its expiry; once less than `renewRefreshMarginMs`
    /// of it is left, renews it (`POST /oauth/renew_refresh_token/`, 30 days more, up to five times per
    /// authorization) and keeps the new one for every process. A failed renewal leaves the current one,
    /// tried again at the next refresh.
    private func keepRefreshTokenAlive(_ account: String, _ f: Fetched, fence: Int) async {
        guard let c = credentials[account], let current = f.refreshToken, let expires = f.refreshExpiresAtMs else { return }
        try? await shared.storeRefreshToken(account: account, token: current, expiresAtMs: expires, origin: Self.origin(c.secret), fence: fence)
        guard expires - clock() < settings.renewRefreshMarginMs else { return }
        let started = clock()
        let body = "client_key=\(ResolvedAdapter.percentEncode(c.appId))&refresh_token=\(ResolvedAdapter.percentEncode(current))"
        let request = HTTPRequest(
            method: "POST", url: baseURL + "/oauth/renew_refresh_token/", headers: [("Content-Type", "application/x-www-form-urlencoded")],
            body: Array(body.utf8), timeoutMs: 5000)
        guard let response = try? await transport.send(request), let data = JSONValue.parse(response.body)?.lookup("data"),
            let renewed = data.lookup("refresh_token")?.scalarText, !renewed.isEmpty,
            let seconds = data.lookup("expires_in")?.scalarText.flatMap({ Int64($0) })
        else {
            Counter(label: "scrm_douyin_refresh_renewals_total", dimensions: [("account", account), ("result", "error")]).increment()
            return
        }
        try? await shared.storeRefreshToken(
            account: account, token: renewed, expiresAtMs: started + seconds * 1000, origin: Self.origin(c.secret), fence: fence)
        Counter(label: "scrm_douyin_refresh_renewals_total", dimensions: [("account", account), ("result", "ok")]).increment()
    }

    private func beijingDay() -> Int64 { (clock() / 1000 + 8 * 3600) / 86_400 }

    // MARK: scripts



}
