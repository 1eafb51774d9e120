import Foundation
import GatewayCore
import GatewayCrypto
import Logging
import Metrics
import Outbound
import RedisClient
import Store
import NIOConcurrencyHelpers

/// Moves campaigns along in time, in every gateway process: starts scheduled ones (audience snapshot),
/// plans running ones (one process at a time per campaign, by lease), completes those with nothing
/// left to send, expires those past their expiry. All state is in Redis, so any process may die.
public final class CampaignRunner: Sendable {
    let redis: RedisPool
    let store: CampaignStore
    let planner: CampaignPlanner
    let audiences: AudienceStore
    let compile: @Sendable (Campaign) throws -> CompiledCampaign
    let clock: @Sendable () -> Int64
    let owner: String
    let chunk: Int
    private let planning = NIOLockedValueBox<Set<String>>([])

    public init(
        redis: RedisPool, audiences: AudienceStore, compile: @escaping @Sendable (Campaign) throws -> CompiledCampaign, chunk: Int = 1000,
        clock: @escaping @Sendable () -> Int64
    ) {
        self.redis = redis
        self.store = CampaignStore(redis: redis)
        self.planner = CampaignPlanner(redis: redis)
        self.audiences = audiences
        self.compile = compile
        self.chunk = chunk
        self.clock = clock
        self.owner = "\(ProcessInfo.processInfo.hostName)-\(getpid())-\(SecureRandom.alphanumeric(6))"
    }

    /// Runs until cancelled: a pass every `intervalMs`.
    public func run(intervalMs: Int = 250) async {
        await withTaskGroup(of: Void.self) { group in
            while !Task.isCancelled {
                for id in (try? await store.active()) ?? [] {
                    guard let c = try? await store.get(id) else { continue }
                    if c.state == .running, !c.planDone, claimLocal(id) {
                        group.addTask {
                            await self.plan(id)
                            self.planning.withLockedValue { _ = $0.remove(id) }
                        }
                    } else {
                        _ = try? await step(c)
                    }
                }
                try? await Task.sleep(for: .milliseconds(intervalMs))
            }
            group.cancelAll()
        }
    }

    private func claimLocal(_ id: String) -> Bool { planning.withLockedValue { $0.insert(id).inserted } }

    /// One decision for a campaign that is not being planned here: start, expire, release, complete.
    @discardableResult
    public func step(_ c: Campaign) async throws -> Campaign.State {
        let now = clock()
        if let expiry = c.expiresAt, now >= expiry, !c.state.isFinal {
            if case .moved(let to) = try await store.transition(c.id, .expire, now: now) {
                try await releaseAllParked(c.id)
                return to
            }
            return c.state
        }
        switch c.state {
        case .scheduled where (c.startAt ?? 0) <= now: return try await activate(c)
        case .running:
            if try await store.parkedCount(c.id) > 0 { try await releaseAllParked(c.id) }
            if c.planDone, case .moved(let to) = try await store.transition(c.id, .complete, now: now) { return to }
        default: break
        }
        return c.state
    }

    /// scheduled -> running: snapshot the audience (under the planner lease, so one process does it;
    /// the lease is given up after, so whichever process comes next plans).
    public func activate(_ c: Campaign) async throws -> Campaign.State {
        guard try await takeLease(c.id) else { return c.state }
        do {
            let state = try await snapshotAndRun(c)
            try? await releaseLease(c.id)
            return state
        } catch {
            try? await releaseLease(c.id)
            throw error
        }
    }

    /// The snapshot goes to a key of its own and is renamed into place by the same script that moves
    /// the campaign to running: an activation that lost a race (another one won, or the campaign was
    /// cancelled meanwhile) throws its snapshot away and cannot touch the winner's.
    private func snapshotAndRun(_ c: Campaign) async throws -> Campaign.State {
        let compiled = try compile(c)
        let staging = Keys.campaignAudience(c.id) + ":staging:" + SecureRandom.alphanumeric(8)
        let size = try await audiences.snapshot(compiled.audience, into: staging, nowMs: clock())
        switch try await store.transition(c.id, .activate, now: clock(), audienceSize: size, snapshot: staging) {
        case .moved(let to):
            Counter(label: "scrm_campaigns_started_total").increment()
            return to
        default:
            return try await store.get(c.id)?.state ?? c.state
        }
    }

    /// Plans the campaign to the end of its snapshot while this process holds the lease and it runs.
    /// The next chunk is read while the current one is written.
    func plan(_ id: String) async {
        do {
            guard try await takeLease(id), let c = try await store.get(id), c.state == .running, !c.planDone else { return }
            let compiled = try compile(c)
            var chunk = try await planner.prepare(c, compiled: compiled, cursor: c.cursor, owner: owner, now: clock(), count: self.chunk)
            while !Task.isCancelled {
                let following: Task<CampaignPlanner.PreparedChunk, any Error>? =
                    chunk.next == "0"
                    ? nil
                    : Task { [planner, owner, clock, size = self.chunk, cursor = chunk.next] in
                        try await planner.prepare(c, compiled: compiled, cursor: cursor, owner: owner, now: clock(), count: size)
                    }
                let result = try await planner.apply(c, chunk)
                guard case .planned(let n, let done) = result, !done, let following else {
                    following?.cancel()
                    if case .planned(let n, _) = result { Counter(label: "scrm_campaign_recipients_planned_total").increment(by: n) }
                    return
                }
                Counter(label: "scrm_campaign_recipients_planned_total").increment(by: n)
                chunk = try await following.value
            }
        } catch {
            Logger(label: "scrm.campaigns").warning("planning campaign \(id) stopped: \(error)")
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// The planner lease (15 s, renewed by each planned chunk).
    func takeLease(_ id: String) async throws -> Bool { try await lease(id).takeOrHold(ms: 15_000) }

    /// Gives the lease up (only if this process holds it), so any process may plan next.
    func releaseLease(_ id: String) async throws { try await lease(id).release() }

    private func lease(_ id: String) -> Lease { Lease(redis: redis, key: Keys.campaignPlanner(id), owner: owner) }

    public func releaseAllParked(_ id: String) async throws {
        while try await store.releaseParked(id) > 0 {}
    }
}
