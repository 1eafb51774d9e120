import Foundation
import GatewayCore
import RedisClient

/// One mass send and, once WeChat reports it (MASSSENDJOBFINISH), its outcome.
public struct MassSendJob: Codable, Sendable, Equatable {
    public var msgId: String
    public var msgDataId: String?
    public var account: String
    /// Our tag, and WeChat's id for it (from a tag push).
    public var tag: String
    public var tagId: Int
    public var type: String
    public var campaign: String?
    public var createdAt: Int64
    public var createdBy: String
    public var sandbox: Bool
    /// `submitted` until WeChat reports; then WeChat's status (`send success`, `send fail`, `err(...)`).
    public var status: String
    public var total: Int?
    public var filtered: Int?
    public var sent: Int?
    public var errors: Int?
    public var finishedAt: Int64?

    public init(
        msgId: String, msgDataId: String?, account: String, tag: String, tagId: Int, type: String, campaign: String?, createdAt: Int64, createdBy: String,
        sandbox: Bool
    ) {
        self.msgId = msgId
        self.msgDataId = msgDataId
        self.account = account
        self.tag = tag
        self.tagId = tagId
        self.type = type
        self.campaign = campaign
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.sandbox = sandbox
        status = "submitted"
    }
}

/// Mass sends per account: the quota taken atomically before WeChat is called, the jobs, and their
/// outcomes from MASSSENDJOBFINISH callbacks.
public struct MassSendStore: Sendable {
    let redis: RedisPool

    public init(redis: RedisPool) { self.redis = redis }

    /// Takes one send of the period; nil when the quota is spent. Returns the sends used with it.
    public func takeQuota(account: String, quota: MassSendQuota, nowMs: Int64) async throws -> Int? {
        let window = quota.window(nowMs: nowMs)
        let used = try await redis.fcall(
            StoreFunctions.library, "mass_quota_take", keys: [Keys.massSendQuota(account: account, window: window.id)],
            args: [String(quota.limit), String(max(1, window.endsAtMs - nowMs))]
        ).int ?? -1
        return used < 0 ? nil : used
    }

    public func returnQuota(account: String, quota: MassSendQuota, nowMs: Int64) async throws {
        _ = try await redis.fcall(
            StoreFunctions.library, "mass_quota_return", keys: [Keys.massSendQuota(account: account, window: quota.window(nowMs: nowMs).id)], args: [])
    }

    public func used(account: String, quota: MassSendQuota, nowMs: Int64) async throws -> Int {
        Int(try await redis.send("GET", Keys.massSendQuota(account: account, window: quota.window(nowMs: nowMs).id)).string ?? "") ?? 0
    }

    /// WeChat's id for one of our tags, once the tag was pushed to the account.
    public func wechatTagId(account: String, tag: String) async throws -> Int? {
        try await redis.send("GET", Keys.wechatTagId(account: account, tag: tag)).string.flatMap { Int($0) }
    }

    public func record(_ job: MassSendJob) async throws {
        let json = String(decoding: try JSONEncoder().encode(job), as: UTF8.self)
        var commands = [["HSET", Keys.massSends(account: job.account), job.msgId, json]]
        if let c = job.campaign { commands.append(["SADD", Keys.campaignMassSends(c), "\(job.account)|\(job.msgId)"]) }
        _ = try await redis.pipelineChecked(commands)
    }

    public func jobs(account: String) async throws -> [MassSendJob] {
        try await redis.send("HVALS", Keys.massSends(account: account)).strings
            .compactMap { try? JSONDecoder().decode(MassSendJob.self, from: Data($0.utf8)) }.sorted { ($0.createdAt, $0.msgId) > ($1.createdAt, $1.msgId) }
    }

    public func campaignJobs(_ campaign: String) async throws -> [MassSendJob] {
        var out = [MassSendJob]()
        for ref in try await redis.send("SMEMBERS", Keys.campaignMassSends(campaign)).strings {
            let parts = ref.split(separator: "|", maxSplits: 1).map(String.init)
            guard parts.count == 2, let raw = try await redis.send("HGET", Keys.massSends(account: parts[0]), parts[1]).string,
                let job = try? JSONDecoder().decode(MassSendJob.self, from: Data(raw.utf8))
            else { continue }
            out.append(job)
        }
        return out.sorted { ($0.createdAt, $0.msgId) < ($1.createdAt, $1.msgId) }
    }

    /// A MASSSENDJOBFINISH callback: true when it was recorded (a job of ours, not yet finished).
    @discardableResult
    public func finish(account: String, message: InboundMessage, nowMs: Int64) async throws -> Bool {
        guard message.event == "MASSSENDJOBFINISH", let msgId = message.msgId, !msgId.isEmpty else { return false }
        func count(_ k: String) -> String { String(Int(message[k] ?? "") ?? 0) }
        let r = try await redis.fcall(
            StoreFunctions.library, "mass_job_finish", keys: [Keys.massSends(account: account)],
            args: [msgId, message["Status"] ?? "", count("TotalCount"), count("FilterCount"), count("SentCount"), count("ErrorCount"), String(nowMs)])
        return r.string != nil
    }
}
