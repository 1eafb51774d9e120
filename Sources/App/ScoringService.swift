import Foundation
import GatewayCore
import Logging
import Metrics
import NIOConcurrencyHelpers
import RedisClient
import ServiceLifecycle
import Store

/// The scoring worker: consumer group `scoring` on `stream:inbound` (from the start of the stream, so
/// history is scored once), each interaction matched against the rules and applied by `ScoreStore`
/// (idempotent per entry). Entries are acknowledged after they are applied; a stopped process's
/// entries are taken over after a minute.
public struct ScoringService: Service {
    let redis: RedisPool
    /// The rules in force (reloaded from `source` when its file changes).
    let rules: @Sendable () -> ScoringRules
    let source: ScoringRulesSource?
    let store: ScoreStore
    let clock: @Sendable () -> Int64
    static let group = "scoring"

    public init(redis: RedisPool, rules: ScoringRules, timelineCap: Int, clock: @escaping @Sendable () -> Int64) {
        self.redis = redis
        self.rules = { rules }
        self.source = nil
        self.store = ScoreStore(redis: redis, timelineCap: timelineCap)
        self.clock = clock
    }

    /// Scores with the rules of `source`, picking up edits of its file within seconds.
    public init(redis: RedisPool, source: ScoringRulesSource, timelineCap: Int, clock: @escaping @Sendable () -> Int64) {
        self.redis = redis
        self.rules = { source.current }
        self.source = source
        self.store = ScoreStore(redis: redis, timelineCap: timelineCap)
        self.clock = clock
    }

    /// The rules file the config names, reloadable; nil when scoring is off.
    public static func source(config: GatewayConfig) throws -> ScoringRulesSource? {
        guard let path = config.scoringRules else { return nil }
        return try ScoringRulesSource(path: path)
    }

    /// Loads the rules the config names; nil when scoring is off. Throws `ConfigError` for a bad file.
    public static func rules(config: GatewayConfig) throws -> ScoringRules? {
        try source(config: config)?.current
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown { await self.loop() }
    }

    /// The loop `run()` runs (tests call it directly, without a service group).
    public func loop() async {
        let lastFileCheck = NIOLockedValueBox(ContinuousClock.now)
        await StreamGroupReader(redis: redis, stream: Keys.inboundStream, group: Self.group).run(beforeBatch: { [source] in
            guard let source, lastFileCheck.withLockedValue({ ContinuousClock.now - $0 > .seconds(2) }) else { return }
            lastFileCheck.withLockedValue { $0 = ContinuousClock.now }
            if source.reloadIfChanged() { Counter(label: "scrm_scoring_rules_reloaded_total").increment() }
        }) { id, fields in try await score(entry: id, fields: fields) }
    }

    func score(entry: String, fields f: [String: String]) async throws {
        guard let type = f["type"], let customer = f["customer"], !customer.isEmpty else { return }
        var payload = [String: String]()
        if case .object(let o)? = JSONValue.parse(Array((f["payload"] ?? "").utf8)) {
            for (k, v) in o { if let s = v.scalarText { payload[k] = s } }
        }
        let rules = self.rules()
        let hits = rules.matches(type: type, payload: payload)
        guard !hits.isEmpty else {
            if type != "customer.merged" { try await store.touch(customer: customer) }
            return
        }
        let now = Int64(f["at"] ?? "").flatMap { $0 > 0 ? $0 : nil } ?? clock()
        if case .scored(_, _, let stage, let previous, _, let applied) = try await store.apply(
            customer: customer, interaction: entry, hits: hits, rules: rules, nowMs: now)
        {
            Counter(label: "scrm_scoring_rules_applied_total").increment(by: applied.count)
            if stage != previous { Counter(label: "scrm_scoring_stage_changes_total", dimensions: [("stage", stage)]).increment() }
        }
    }
}
