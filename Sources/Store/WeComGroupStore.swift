import Foundation
import GatewayCore
import RedisClient

/// A campaign's WeCom group sends in Redis: the groups the planner filled (`<variant>|<owner>` ->
/// external contact id -> customer), the tasks made from them, their claims, and each recipient's
/// result. The state changes are functions of `Lua/wecom_groups.lua`.
public struct WeComGroupStore: Sendable {
    let redis: RedisPool

    public init(redis: RedisPool) { self.redis = redis }

    public func groups(_ campaign: String) async throws -> [String] {
        try await redis.send("SMEMBERS", Keys.campaignWeComGroups(campaign)).strings.sorted()
    }

    /// A group's recipients: external contact id -> customer.
    public func recipients(_ campaign: String, group: String) async throws -> [String: String] {
        try await redis.send("HGETALL", Keys.campaignWeComRecipients(campaign, group: group)).dictionary
    }

    public func tasks(_ campaign: String) async throws -> [WeComGroupTask] {
        try await redis.send("HVALS", Keys.campaignWeComTasks(campaign)).strings
            .compactMap { try? JSONDecoder().decode(WeComGroupTask.self, from: Data($0.utf8)) }
            .sorted { ($0.owner, $0.variant, $0.chunk) < ($1.owner, $1.variant, $1.chunk) }
    }

    public func task(_ campaign: String, id: String) async throws -> WeComGroupTask? {
        try await redis.send("HGET", Keys.campaignWeComTasks(campaign), id).string.flatMap { try? JSONDecoder().decode(WeComGroupTask.self, from: Data($0.utf8)) }
    }

    /// Adds tasks not yet there (a second process making the same split adds nothing).
    public func add(_ campaign: String, _ tasks: [WeComGroupTask]) async throws {
        guard !tasks.isEmpty else { return }
        _ = try await redis.pipelineChecked(tasks.map { ["HSETNX", Keys.campaignWeComTasks(campaign), $0.id, try Self.json($0)] })
    }

    public enum Claim: Sendable, Equatable {
        case claimed, busy, done
        /// A claim from `sinceMs` ran out without closing the task: it may exist on WeCom.
        case inDoubt(sinceMs: Int64)
    }

    public func claim(_ campaign: String, task: String, nowMs: Int64, leaseMs: Int64, process: String) async throws -> Claim {
        let r = try await redis.fcall(
            StoreFunctions.library, "wecom_task_claim", keys: [Keys.campaignWeComClaims(campaign)], args: [task, String(nowMs), String(leaseMs), process]
        ).strings
        switch r.first {
        case "claimed": return .claimed
        case "done": return .done
        case "indoubt": return .inDoubt(sinceMs: Int64(r.count > 1 ? r[1] : "") ?? 0)
        default: return .busy
        }
    }

    public func release(_ campaign: String, task: String, process: String) async throws {
        _ = try await redis.fcall(StoreFunctions.library, "wecom_task_release", keys: [Keys.campaignWeComClaims(campaign)], args: [task, process])
    }

    /// Records a task created (with WeCom's `fail_list`) or, with `failure`, refused for good. False
    /// when this process no longer held the claim.
    /// On a cluster the polls (`Keys.wecomResultPolls`, one key for every campaign) are in another slot:
    /// the first poll is scheduled before the close (a poll of a task closed by another process finds
    /// it recorded all the same).
    public func close(_ campaign: String, _ task: WeComGroupTask, process: String, failure: String?, failList: [String], pollAtMs: Int64?) async throws -> Bool {
        let cluster = redis.isCluster
        if cluster, let at = pollAtMs { _ = try await redis.send("ZADD", Keys.wecomResultPolls, String(at), Self.pollMember(campaign, task.id)) }
        let args = [
            task.id, process, try Self.json(task), task.variant, String(task.recipients), failure ?? "", Self.pollMember(campaign, task.id),
            cluster ? "" : pollAtMs.map(String.init) ?? "",
        ] + failList
        let keys = [
            Keys.campaignWeComClaims(campaign), Keys.campaignWeComTasks(campaign), Keys.campaignStats(campaign), Keys.campaignWeComResults(campaign),
        ]
        return try await redis.fcall(StoreFunctions.library, "wecom_task_close", keys: cluster ? keys : keys + [Keys.wecomResultPolls], args: args).int == 1
    }

    /// Records a results poll: the task's counts, each recipient's status (counted once when final),
    /// and the next poll (nil: polling ends). Returns how many recipients turned final.
    @discardableResult
    public func results(_ campaign: String, _ task: WeComGroupTask, statuses: [(externalUserId: String, status: Int)], nextPollAtMs: Int64?) async throws -> Int {
        var args = [task.id, try Self.json(task), task.variant, Self.pollMember(campaign, task.id), nextPollAtMs.map(String.init) ?? ""]
        for s in statuses { args += [s.externalUserId, String(s.status)] }
        let keys = [Keys.campaignWeComTasks(campaign), Keys.campaignStats(campaign), Keys.campaignWeComResults(campaign)]
        guard redis.isCluster else {
            return try await redis.fcall(StoreFunctions.library, "wecom_task_results", keys: keys + [Keys.wecomResultPolls], args: args).int ?? 0
        }
        // A cluster: the next poll is set after (a process that stops first leaves the poll put off; it is polled again).
        let turned = try await redis.fcall(StoreFunctions.library, "wecom_task_results", keys: keys, args: args).int ?? 0
        let member = Self.pollMember(campaign, task.id)
        _ = try await redis.send(nextPollAtMs.map { ["ZADD", Keys.wecomResultPolls, String($0), member] } ?? ["ZREM", Keys.wecomResultPolls, member])
        return turned
    }

    /// Polls due now as (campaign, task id), each put off by `retryMs` for the others.
    public func takeDuePolls(nowMs: Int64, limit: Int = 50, retryMs: Int64 = 60_000) async throws -> [(campaign: String, task: String)] {
        try await redis.fcall(StoreFunctions.library, "wecom_polls_take", keys: [Keys.wecomResultPolls], args: [String(nowMs), String(limit), String(retryMs)])
            .strings.compactMap { m in
                guard let bar = m.firstIndex(of: "|") else { return nil }
                return (String(m[..<bar]), String(m[m.index(after: bar)...]))
            }
    }

    static func pollMember(_ campaign: String, _ task: String) -> String { "\(campaign)|\(task)" }

    static func json(_ task: WeComGroupTask) throws -> String { String(decoding: try JSONEncoder().encode(task), as: UTF8.self) }
}
