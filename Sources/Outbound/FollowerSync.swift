import Foundation
import GatewayCore
import GatewayCrypto
import Metrics
import RedisClient
import Store

/// Followers from WeChat's user API into customers:
/// - after a subscribe, the follower's profile and unionid (`user/info/batchget`, up to 100 a call,
///   gathered for at most `flushMs`); the unionid is bound, merging customers it links;
/// - a one-off import of an account's existing followers (`user/get`, 10,000 a page), checkpointed
///   after every page in `import:{account}` so it resumes where it stopped and shows its progress.
public final class FollowerSync: Sendable {
    let redis: RedisPool
    let customers: CustomerStore
    let api: WeChatUserAPI
    /// Accounts that can call the API (they have an app secret).
    let accounts: Set<String>
    let clock: @Sendable () -> Int64
    let flushMs: Int64
    let consumer = "enrich-\(getpid())-\(SecureRandom.alphanumeric(6))"

    public init(
        redis: RedisPool, customers: CustomerStore, api: WeChatUserAPI, accounts: Set<String>, flushMs: Int64 = 1000,
        clock: @escaping @Sendable () -> Int64
    ) {
        self.redis = redis
        self.customers = customers
        self.api = api
        self.accounts = accounts
        self.flushMs = flushMs
        self.clock = clock
    }

    // MARK: profiles after subscribe

    /// Reads subscribe events from `stream:inbound` (group `enrich`, from when it was first created)
    /// until cancelled. Entries are acknowledged only once their batch is stored.
    public func runEnrichment() async {
        _ = try? await redis.send("XGROUP", "CREATE", Keys.inboundStream, Keys.enrichGroup, "$", "MKSTREAM")
        var pending = [String: [(openid: String, entry: String)]]()
        // Batching and reclaim timing run on the process's own clock (the injected one may stand still in tests).
        var oldest = [String: ContinuousClock.Instant]()
        var lastReclaim = ContinuousClock.now - .seconds(60)
        let flushAfter = Duration.milliseconds(flushMs)
        while !Task.isCancelled {
            var entries = [(String, [String: String])]()
            do {
                let r = try await redis.send([
                    "XREADGROUP", "GROUP", Keys.enrichGroup, consumer, "COUNT", "500", "STREAMS", Keys.inboundStream, ">",
                ])
                var raw = r.array?.first?.array?.last?.array ?? []
                if ContinuousClock.now - lastReclaim > .seconds(30) {
                    // Entries a stopped process read but never acknowledged.
                    lastReclaim = ContinuousClock.now
                    let claimed = try await redis.send(["XAUTOCLAIM", Keys.inboundStream, Keys.enrichGroup, consumer, "60000", "0-0", "COUNT", "500"])
                    if let parts = claimed.array, parts.count >= 2 { raw += parts[1].array ?? [] }
                }
                for e in raw {
                    guard let parts = e.array, parts.count == 2, let id = parts[0].string else { continue }
                    entries.append((id, parts[1].dictionary))
                }
            } catch {
                try? await Task.sleep(for: .milliseconds(500))
                continue
            }
            var ignored = [String]()
            for (id, f) in entries {
                guard f["type"] == "event.subscribe", let account = f["account"], accounts.contains(account),
                    case .object(let payload)? = JSONValue.parse(Array((f["payload"] ?? "").utf8)), let openid = payload["FromUserName"]?.scalarText
                else {
                    ignored.append(id)
                    continue
                }
                if pending[account, default: []].isEmpty { oldest[account] = ContinuousClock.now }
                pending[account, default: []].append((openid, id))
            }
            if !ignored.isEmpty { _ = try? await redis.send(["XACK", Keys.inboundStream, Keys.enrichGroup] + ignored) }
            for (account, list) in pending
            where !list.isEmpty && (list.count >= WeChatUserAPI.batchGetLimit || ContinuousClock.now - (oldest[account] ?? .now) >= flushAfter) {
                let batch = Array(list.prefix(WeChatUserAPI.batchGetLimit))
                do {
                    try await enrich(account: account, openids: batch.map(\.openid))
                    _ = try? await redis.send(["XACK", Keys.inboundStream, Keys.enrichGroup] + batch.map(\.entry))
                    pending[account] = Array(list.dropFirst(batch.count))
                    oldest[account] = ContinuousClock.now
                } catch {
                    // Left pending: retried on the next pass, or by XAUTOCLAIM if this process stops.
                    Counter(label: "scrm_follower_enrich_failures_total", dimensions: [("account", account)]).increment()
                    pending[account] = Array(list.dropFirst(batch.count))
                }
            }
            if entries.isEmpty { try? await Task.sleep(for: .milliseconds(min(100, Int(flushMs)))) }
        }
    }

    /// Profiles and unionids of up to 100 followers, stored (unionids bound, merging where they link).
    public func enrich(account: String, openids: [String]) async throws {
        let followers = try await api.batchGet(account: account, openids: openids)
        for f in followers where f.subscribed {
            _ = try await customers.upsertFollower(account: account, openid: f.openid, unionid: f.unionid, profile: f.profile, nowMs: clock())
        }
        Counter(label: "scrm_follower_profiles_total", dimensions: [("account", account)]).increment(by: followers.count)
    }

    // MARK: import

    public struct ImportProgress: Sendable, Equatable {
        public let state: String
        public let total: Int
        public let imported: Int
        public let created: Int
        public let error: String?
        public let startedAt: Int64?
        public let updatedAt: Int64?
    }

    public func importProgress(account: String) async throws -> ImportProgress? { try await progress(Keys.followerImport(account: account)) }

    public enum StartResult: Sendable, Equatable {
        case started
        /// Another process is importing (its heartbeat is fresh).
        case alreadyRunning
    }

    /// Starts (or resumes from its checkpoint) the import of an account's followers, in the background.
    public func startImport(account: String) async throws -> StartResult {
        let key = Keys.followerImport(account: account)
        let now = clock()
        // One importer: take the run if nobody's heartbeat is fresh (60 s).
        let took = try await redis.fcall(StoreFunctions.library, "follower_import_take", keys: [key], args: [String(now), String(now - 60_000), consumer]).int == 1
        guard took else { return .alreadyRunning }
        Task { await self.runImport(account: account) }
        return .started
    }

    func runImport(account: String) async {
        let key = Keys.followerImport(account: account)
        do {
            var next = try await redis.send("HGET", key, "next").string ?? ""
            while true {
                let page = try await api.followers(account: account, after: next)
                var created = 0
                var start = 0
                while start < page.openids.count {
                    let chunk = Array(page.openids[start..<min(start + WeChatUserAPI.batchGetLimit, page.openids.count)])
                    let profiles = try await api.batchGet(account: account, openids: chunk)
                    for f in profiles where f.subscribed {
                        if try await customers.upsertFollower(account: account, openid: f.openid, unionid: f.unionid, profile: f.profile, nowMs: clock()).created {
                            created += 1
                        }
                    }
                    start += chunk.count
                }
                // The checkpoint: a restart re-reads at most this page (upserts are idempotent).
                _ = try await redis.pipelineChecked([
                    ["HSET", key, "total", String(page.total), "next", page.next, "updatedAt", String(clock())],
                    ["HINCRBY", key, "imported", String(page.openids.count)], ["HINCRBY", key, "created", String(created)],
                ])
                let importedText = try await redis.send("HGET", key, "imported").string ?? ""
                let imported = Int(importedText) ?? 0
                // WeChat's last page still names a next_openid; the empty page after it is not worth a call.
                if page.next.isEmpty || page.openids.isEmpty || imported >= page.total { break }
                next = page.next
            }
            _ = try await redis.send("HSET", key, "state", "done", "updatedAt", String(clock()))
        } catch {
            _ = try? await redis.send("HSET", key, "state", "failed", "error", "\(error)", "updatedAt", String(clock()))
        }
    }

    // MARK: tag pushes

    /// Starts pushing every customer tagged `tag` who follows `account` to the WeChat tag of the same
    /// name (created on first use), 50 openids per call, in the background; progress as for imports.
    public func startTagPush(account: String, tag: String) async throws -> StartResult {
        let key = Keys.tagPush(account: account, tag: tag)
        let now = clock()
        let took = try await redis.fcall(StoreFunctions.library, "follower_import_take", keys: [key], args: [String(now), String(now - 60_000), consumer]).int == 1
        guard took else { return .alreadyRunning }
        Task { await self.runTagPush(account: account, tag: tag) }
        return .started
    }

    public func tagPushProgress(account: String, tag: String) async throws -> ImportProgress? {
        try await progress(Keys.tagPush(account: account, tag: tag))
    }

    func runTagPush(account: String, tag: String) async {
        let key = Keys.tagPush(account: account, tag: tag)
        do {
            let idKey = Keys.wechatTagId(account: account, tag: tag)
            let tagId: Int
            if let known = try await redis.send("GET", idKey).string.flatMap({ Int($0) }) {
                tagId = known
            } else {
                tagId = try await api.createTag(account: account, name: tag)
                _ = try await redis.send("SET", idKey, String(tagId))
            }
            let total = try await redis.send("SCARD", Keys.tag(tag)).int ?? 0
            _ = try await redis.send("HSET", key, "total", String(total))
            let prefix = "openid:\(account):"
            var cursor = "0"
            var batch = [String]()
            func flush() async throws {
                guard !batch.isEmpty else { return }
                try await api.batchTag(account: account, tagId: tagId, openids: batch)
                _ = try await redis.pipelineChecked([["HINCRBY", key, "created", String(batch.count)], ["HSET", key, "updatedAt", String(clock())]])
                batch.removeAll()
            }
            repeat {
                let r = try await redis.send("SSCAN", Keys.tag(tag), cursor, "COUNT", "500").array ?? []
                cursor = r.first?.string ?? "0"
                let ids = r.count > 1 ? r[1].strings : []
                let identities = try await redis.pipelineChecked(ids.map { ["SMEMBERS", Keys.customerIdentities($0)] })
                for set in identities {
                    for identity in set.strings where identity.hasPrefix(prefix) {
                        batch.append(String(identity.dropFirst(prefix.count)))
                        if batch.count == WeChatUserAPI.batchTagLimit { try await flush() }
                    }
                }
                _ = try await redis.send("HINCRBY", key, "imported", String(ids.count))
            } while cursor != "0"
            try await flush()
            _ = try await redis.send("HSET", key, "state", "done", "updatedAt", String(clock()))
        } catch {
            _ = try? await redis.send("HSET", key, "state", "failed", "error", "\(error)", "updatedAt", String(clock()))
        }
    }

    private func progress(_ key: String) async throws -> ImportProgress? {
        let h = try await redis.send("HGETALL", key).dictionary
        guard let state = h["state"] else { return nil }
        return ImportProgress(
            state: state, total: Int(h["total"] ?? "") ?? 0, imported: Int(h["imported"] ?? "") ?? 0, created: Int(h["created"] ?? "") ?? 0,
            error: h["error"], startedAt: h["startedAt"].flatMap { Int64($0) }, updatedAt: h["updatedAt"].flatMap { Int64($0) })
    }

}
