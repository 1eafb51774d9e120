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
    let jobs: FollowerJobStore
    let subscribes: StreamGroupReader
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
        jobs = FollowerJobStore(redis: redis)
        subscribes = StreamGroupReader(redis: redis, streams: redis.streams.all(Keys.inboundStream), group: Keys.enrichGroup, from: "$", consumer: consumer)
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
        await subscribes.createGroup()
        var pending = [String: [(openid: String, entry: StreamGroupReader.Entry)]]()
        // Batching and reclaim timing run on the process's own clock (the injected one may stand still in tests).
        var oldest = [String: ContinuousClock.Instant]()
        var lastReclaim = ContinuousClock.now - .seconds(60)
        let flushAfter = Duration.milliseconds(flushMs)
        while !Task.isCancelled {
            var entries = [StreamGroupReader.Entry]()
            do {
                // With entries a stopped process read but never acknowledged, every 30 s.
                let reclaim = ContinuousClock.now - lastReclaim > .seconds(30)
                if reclaim { lastReclaim = ContinuousClock.now }
                entries = try await subscribes.read(count: 500, reclaim: reclaim)
            } catch {
                try? await Task.sleep(for: .milliseconds(500))
                await subscribes.createGroup()  // a partition whose group was lost (NOGROUP)
                continue
            }
            var ignored = [StreamGroupReader.Entry]()
            for e in entries {
                let f = e.fields
                guard f["type"] == "event.subscribe", let account = f["account"], accounts.contains(account),
                    case .object(let payload)? = JSONValue.parse(Array((f["payload"] ?? "").utf8)), let openid = payload["FromUserName"]?.scalarText
                else {
                    ignored.append(e)
                    continue
                }
                if pending[account, default: []].isEmpty { oldest[account] = ContinuousClock.now }
                pending[account, default: []].append((openid, e))
            }
            try? await subscribes.ack(ignored)
            for (account, list) in pending
            where !list.isEmpty && (list.count >= WeChatUserAPI.batchGetLimit || ContinuousClock.now - (oldest[account] ?? .now) >= flushAfter) {
                let batch = Array(list.prefix(WeChatUserAPI.batchGetLimit))
                do {
                    try await enrich(account: account, openids: batch.map(\.openid))
                    try? await subscribes.ack(batch.map(\.entry))
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

    public typealias ImportProgress = FollowerJobStore.Progress

    public func importProgress(account: String) async throws -> ImportProgress? { try await jobs.progress(Keys.followerImport(account: account)) }

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
        guard try await jobs.take(key, owner: consumer, now: now) else { return .alreadyRunning }
        Task { await self.runImport(account: account) }
        return .started
    }

    func runImport(account: String) async {
        let key = Keys.followerImport(account: account)
        do {
            var next = try await jobs.importCheckpoint(key)
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
                let imported = try await jobs.recordImportPage(
                    key, total: page.total, next: page.next, read: page.openids.count, created: created, now: clock())
                // WeChat's last page still names a next_openid; the empty page after it is not worth a call.
                if page.next.isEmpty || page.openids.isEmpty || imported >= page.total { break }
                next = page.next
            }
            try await jobs.finish(key, now: clock())
        } catch {
            try? await jobs.fail(key, error: "\(error)", now: clock())
        }
    }

    // MARK: tag pushes

    /// Starts pushing every customer tagged `tag` who follows `account` to the WeChat tag of the same
    /// name (created on first use), 50 openids per call, in the background; progress as for imports.
    public func startTagPush(account: String, tag: String) async throws -> StartResult {
        let key = Keys.tagPush(account: account, tag: tag)
        let now = clock()
        guard try await jobs.take(key, owner: consumer, now: now) else { return .alreadyRunning }
        Task { await self.runTagPush(account: account, tag: tag) }
        return .started
    }

    public func tagPushProgress(account: String, tag: String) async throws -> ImportProgress? {
        try await jobs.progress(Keys.tagPush(account: account, tag: tag))
    }

    func runTagPush(account: String, tag: String) async {
        let key = Keys.tagPush(account: account, tag: tag)
        do {
            let tagId: Int
            if let known = try await jobs.wechatTagId(account: account, tag: tag) {
                tagId = known
            } else {
                tagId = try await api.createTag(account: account, name: tag)
                try await jobs.setWechatTagId(account: account, tag: tag, id: tagId)
            }
            try await jobs.setTotal(key, try await jobs.tagSize(tag))
            var cursor = "0"
            var batch = [String]()
            func flush() async throws {
                guard !batch.isEmpty else { return }
                try await api.batchTag(account: account, tagId: tagId, openids: batch)
                try await jobs.count(key, created: batch.count, now: clock())
                batch.removeAll()
            }
            repeat {
                let chunk = try await jobs.taggedFollowers(tag: tag, account: account, cursor: cursor)
                cursor = chunk.next
                for openid in chunk.openids {
                    batch.append(openid)
                    if batch.count == WeChatUserAPI.batchTagLimit { try await flush() }
                }
                try await jobs.count(key, imported: chunk.customers, now: clock())
            } while cursor != "0"
            try await flush()
            try await jobs.finish(key, now: clock())
        } catch {
            try? await jobs.fail(key, error: "\(error)", now: clock())
        }
    }
}
