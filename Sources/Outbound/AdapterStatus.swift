import GatewayCore
import RedisClient
import Store

/// What `GET /api/v1/adapters` shows: per enabled adapter its spec'd rate, how the provider has
/// treated it (rate factor, paused, suspended until), and its channel's queue.
public struct AdapterStatus: Sendable {
    public struct Scope: Sendable {
        public let scope: String
        public let factor: Double
        /// Wall-clock ms; nil when not paused or suspended.
        public let pausedUntilMs: Int64?
        public let suspendedUntilMs: Int64?
        /// Provider failures in a row (5xx, timeouts), and until when the circuit is open (wall-clock ms).
        public let failures: Int
        public let circuitOpenUntilMs: Int64?
    }

    public struct Report: Sendable {
        public let name: String
        public let channel: String
        public let renders: String
        public let sandbox: Bool
        public let rateLimit: RateLimitSpec?
        public let scopes: [Scope]
        public let queuedBulk: Int
        public let queuedTransactional: Int
    }

    let messages: MessageStore
    let limits: RateLimiter
    let catalog: AdapterCatalog
    /// The configured accounts: the scopes of per-account limits (the keys are named from these, never scanned).
    let accounts: [String]

    public init(redis: RedisPool, catalog: AdapterCatalog, accounts: [String]) {
        messages = MessageStore(redis: redis)
        limits = RateLimiter(redis: redis)
        self.catalog = catalog
        self.accounts = accounts
    }

    public func reports() async throws -> [Report] {
        var out = [Report]()
        for adapter in catalog.adapters.values.sorted(by: { $0.spec.name < $1.spec.name }) {
            let name = adapter.spec.name
            let channel = adapter.spec.channel.rawValue
            let depths = try await messages.queueDepths(channel: channel)
            var scopes = [Scope]()
            let base = Keys.rateLimit(adapter: name)
            let scopeNames: [String?] = adapter.rateLimit?.scope == .account ? accounts : [nil]
            let limitKeys = Set(scopeNames.map { OutboundEngine.rateLimitKey(adapter, account: $0) }).sorted()
            for (key, state) in zip(limitKeys, try await limits.states(limitKeys)) {
                guard let st = state else { continue }  // never limited: nothing to show
                let scope = String(key.dropFirst(base.count)).drop { $0 == ":" }
                scopes.append(Scope(
                    scope: String(scope), factor: st.factor, pausedUntilMs: st.pausedUntilMs, suspendedUntilMs: st.suspendedUntilMs,
                    failures: st.failures, circuitOpenUntilMs: st.circuitOpenUntilMs))
            }
            out.append(Report(
                name: name, channel: channel, renders: adapter.renders.name, sandbox: adapter.spec.isSandbox,
                rateLimit: adapter.rateLimit, scopes: scopes.sorted { $0.scope < $1.scope },
                queuedBulk: depths.bulk, queuedTransactional: depths.transactional))
        }
        return out
    }
}
