import Foundation
import GatewayCore
import GatewayCrypto
import Logging
import Metrics
import NIOConcurrencyHelpers
import RedisClient

/// The scoring worker: consumer group `scoring` on `stream:inbound` (from the start of the stream, so
/// history is scored once), each interaction matched against the rules and applied by `ScoreStore`
/// (idempotent per entry). Entries are acknowledged after they are applied; a stopped process's
/// entries are taken over after a minute. `App` runs it as a service (`ScoringService`).
public struct ScoringWorker: Sendable {
    let redis: RedisPool
    /// The rules in force (reloaded from `source` when its file changes).
    let rules: @Sendable () -> ScoringRules
    let source: ScoringRulesSource?
    let store: ScoreStore
    let clock: @Sendable () -> Int64
    static let group = "scoring"
    /// With decay, how often the tiers that need a minimum score are evaluated again (a decayed score
    /// can leave them); one process does each round.
    public var tierRefreshMs: Int64 = 15 * 60_000
    /// How often the scores index is checked against the rules' half-life.
    public var indexCheckMs = 5_000

    public init(redis: RedisPool, rules: ScoringRules, timelineCap: Int, clock: @escaping @Sendable () -> Int64) {
        self.redis = redis
        self.rules = { rules }
        self.source = nil
        self.store = ScoreStore(redis: redis, timelineCap: timelineCap)
        self.clock = clock
    }

    /// Scores with the rules of `source`, picking up edits of its file within seconds. `attributes`:
    /// the config's (a cluster's scoring then passes them to each call instead of reading them).
    public init(
        redis: RedisPool, source: ScoringRulesSource, timelineCap: Int, attributes: CustomerAttributes? = nil, clock: @escaping @Sendable () -> Int64
    ) {
        self.redis = redis
        self.rules = { source.current }
        self.source = source
        self.store = ScoreStore(redis: redis, timelineCap: timelineCap, attributes: attributes)
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

    /// Runs until cancelled (tests call it directly, without a service group).
    public func loop() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.scoreInteractions() }
            group.addTask { await self.maintainScores() }
        }
    }

    /// Keeps the scores index on the rules' half-life (rebuilt beside the live one when it changes) and,
    /// with decay, the score-based tiers no more than `tierRefreshMs` stale.
    func maintainScores() async {
        let owner = "\(ProcessInfo.processInfo.hostName)-\(getpid())-\(SecureRandom.alphanumeric(6))"
        while !Task.isCancelled {
            let rules = self.rules()
            let halfLife = Int64(rules.halfLifeDays * 86_400_000)
            do {
                if try await store.ensureIndex(halfLifeMs: halfLife, owner: owner), halfLife > 0 { try await refreshTiers(rules, owner: owner) }
            } catch {
                Logger(label: "scrm.scoring").warning("scores index upkeep: \(error)")
            }
            try? await Task.sleep(for: .milliseconds(indexCheckMs))
        }
    }

    /// Re-evaluates every member of a tier with a minimum score (decay only lowers scores, so only
    /// they can leave one), once per `tierRefreshMs` across all processes (the lease is the schedule).
    func refreshTiers(_ rules: ScoringRules, owner: String) async throws {
        let tiers = rules.tiers.filter { ($0.minScore ?? 0) > 0 }
        guard !tiers.isEmpty, try await redis.send("SET", Keys.scoresTierRefresh, owner, "NX", "PX", String(tierRefreshMs)).string == "OK" else { return }
        for tier in tiers {
            let index = Keys.fieldIndex("tier:\(tier.name)")
            for shard in try await store.shards.holding(redis, { $0.key(single: index) }) {
                var cursor = "0"
                repeat {
                    let scan = try await redis.send("SSCAN", shard.key(single: index), cursor, "COUNT", "500").array ?? []
                    guard scan.count == 2 else { break }
                    cursor = scan[0].string ?? "0"
                    for id in scan[1].strings { try await store.refresh(customer: id, rules: rules, nowMs: clock()) }
                } while cursor != "0" && !Task.isCancelled
            }
        }
        Counter(label: "scrm_scoring_tier_refreshes_total").increment()
    }

    func scoreInteractions() async {
        let lastFileCheck = NIOLockedValueBox(ContinuousClock.now)
        await StreamGroupReader(redis: redis, streams: redis.streams.all(Keys.inboundStream), group: Self.group).run(beforeBatch: { [source] in
            guard let source, lastFileCheck.withLockedValue({ ContinuousClock.now - $0 > .seconds(2) }) else { return }
            lastFileCheck.withLockedValue { $0 = ContinuousClock.now }
            if source.reloadIfChanged() { Counter(label: "scrm_scoring_rules_reloaded_total").increment() }
        }) { id, fields in try await score(entry: id, fields: fields) }
    }

    /// An entry appended by a cluster's ingest steps names its callback (`op`): a chain run again
    /// appends it twice, and it is scored once.
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
            customer: customer, interaction: f["op"].map { "op:" + $0 } ?? entry, hits: hits, rules: rules, nowMs: now)
        {
            Counter(label: "scrm_scoring_rules_applied_total").increment(by: applied.count)
            if stage != previous { Counter(label: "scrm_scoring_stage_changes_total", dimensions: [("stage", stage)]).increment() }
        }
    }
}
