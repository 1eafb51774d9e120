import GatewayCore
import RedisClient

/// Background jobs over an account's WeChat followers, one at a time per job key: the import of its
/// followers (`Keys.followerImport`) and the push of a tag to WeChat (`Keys.tagPush`). Each job's
/// hash is its lease (heartbeat), its checkpoint and the progress the API shows.
public struct FollowerJobStore: Sendable {
    let redis: RedisPool

    /// Where the tag indexes are (one shard per slot on a cluster).
    let shards: IndexShards

    public init(redis: RedisPool) {
        self.redis = redis
        shards = IndexShards(redis: redis, attributes: nil)
    }

    /// A job's progress as its hash holds it.
    public struct Progress: Sendable, Equatable {
        public let state: String
        public let total: Int
        public let imported: Int
        public let created: Int
        public let error: String?
        public let startedAt: Int64?
        public let updatedAt: Int64?
    }

    /// Takes the job for `owner` unless another process's heartbeat is fresh (within a minute); true
    /// when taken (`follower_import_take` in Lua/leases.lua).
    public func take(_ key: String, owner: String, now: Int64) async throws -> Bool {
        try await redis.fcall(StoreFunctions.library, "follower_import_take", keys: [key], args: [String(now), String(now - 60_000), owner]).int == 1
    }

    public func progress(_ key: String) async throws -> Progress? {
        let h = try await redis.send("HGETALL", key).dictionary
        guard let state = h["state"] else { return nil }
        return Progress(
            state: state, total: Int(h["total"] ?? "") ?? 0, imported: Int(h["imported"] ?? "") ?? 0, created: Int(h["created"] ?? "") ?? 0,
            error: h["error"], startedAt: h["startedAt"].flatMap { Int64($0) }, updatedAt: h["updatedAt"].flatMap { Int64($0) })
    }

    /// Where an import resumes: the next_openid of its last stored page ("" = the start).
    public func importCheckpoint(_ key: String) async throws -> String { try await redis.send("HGET", key, "next").string ?? "" }

    /// An import's page stored: the checkpoint moves to `next` and the counts grow. Returns how many
    /// followers the import has read in all.
    public func recordImportPage(_ key: String, total: Int, next: String, read: Int, created: Int, now: Int64) async throws -> Int {
        let r = try await redis.pipelineChecked([
            ["HSET", key, "total", String(total), "next", next, "updatedAt", String(now)],
            ["HINCRBY", key, "imported", String(read)], ["HINCRBY", key, "created", String(created)],
        ])
        return r[1].int ?? 0
    }

    /// Sets a job's total (what its progress counts towards).
    public func setTotal(_ key: String, _ total: Int) async throws { _ = try await redis.send("HSET", key, "total", String(total)) }

    /// Counts `n` more done (`imported`: looked at; `created`: pushed or created).
    public func count(_ key: String, imported: Int = 0, created: Int = 0, now: Int64) async throws {
        var commands = [["HSET", key, "updatedAt", String(now)]]
        if imported != 0 { commands.append(["HINCRBY", key, "imported", String(imported)]) }
        if created != 0 { commands.append(["HINCRBY", key, "created", String(created)]) }
        _ = try await redis.pipelineChecked(commands)
    }

    public func finish(_ key: String, now: Int64) async throws { _ = try await redis.send("HSET", key, "state", "done", "updatedAt", String(now)) }

    public func fail(_ key: String, error: String, now: Int64) async throws {
        _ = try await redis.send("HSET", key, "state", "failed", "error", error, "updatedAt", String(now))
    }

    /// The WeChat tag id our tag was created as on an account, once known.
    public func wechatTagId(account: String, tag: String) async throws -> Int? {
        try await redis.send("GET", Keys.wechatTagId(account: account, tag: tag)).string.flatMap { Int($0) }
    }

    public func setWechatTagId(account: String, tag: String, id: Int) async throws {
        _ = try await redis.send("SET", Keys.wechatTagId(account: account, tag: tag), String(id))
    }

    /// One chunk of the customers tagged `tag` (a page of the tag's shards from `cursor`, "0" first;
    /// "0" next = done): how many it held and the openids they have on `account`.
    public func taggedFollowers(tag: String, account: String, cursor: String, count: Int = 500) async throws -> (next: String, customers: Int, openids: [String]) {
        let page = try await shards.scanPage(redis, { $0.key(single: Keys.tag(tag)) }, cursor: cursor, limit: count)
        let ids = page.ids
        let prefix = "openid:\(account):"
        var openids = [String]()
        if !ids.isEmpty {
            for set in try await redis.pipelineChecked(ids.map { ["SMEMBERS", Keys.customerIdentities($0)] }) {
                for identity in set.strings where identity.hasPrefix(prefix) { openids.append(String(identity.dropFirst(prefix.count))) }
            }
        }
        return (page.nextCursor ?? "0", ids.count, openids)
    }

    /// How many customers carry `tag` (over every shard on a cluster).
    public func tagSize(_ tag: String) async throws -> Int {
        try await shards.totalCards(redis, [(base: "tag", name: tag)]).first ?? 0
    }
}
