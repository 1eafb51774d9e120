import Foundation
import GatewayCore
import RedisClient

/// The queue of one CRM adapter, in Redis, shared by every gateway process:
/// - `feed` moves changes from `stream:crm` (its consumer group) into a coalescing set: a customer
///   changed ten times while waiting is synced once, with its latest state;
/// - `take` forms a batch (full, or the oldest change has waited `maxWait`), leases its customers (a
///   customer is in one batch at a time, so an older snapshot can never land after a newer one) and
///   returns each customer's current snapshot;
/// - `finish` records the CRM's answer per customer: synced (its record id stored back as a `crm`
///   identity), retry after a backoff, or dead-lettered.
/// On a cluster `take` and `finish` run as steps: the queue's half in the adapter's slot, each
/// customer's half in its own (see crm.lua).
public struct CRMOutbox: Sendable {
    let redis: RedisPool
    public let adapter: String
    let shards: IndexShards

    public init(redis: RedisPool, adapter: String) {
        self.redis = redis
        self.adapter = adapter
        shards = IndexShards(redis: redis, attributes: nil)
    }

    /// One customer as the CRM gets it.
    public struct Snapshot: Sendable, Equatable {
        public let customer: String
        /// Rises with every snapshot of this customer for this adapter.
        public let seq: Int64
        /// `{id, identities, tags, fields, recent}` (see the take script).
        public let document: JSONValue

        public init(customer: String, seq: Int64, document: JSONValue) {
            self.customer = customer
            self.seq = seq
            self.document = document
        }
    }

    public enum Take: Sendable, Equatable {
        case batch(token: String, [Snapshot])
        /// Nothing due; look again after this long.
        case wait(ms: Int64)
    }

    public enum Result: Sendable, Equatable {
        case synced(recordId: String?)
        /// The batch failed as a whole (5xx, timeout, expired credentials): again after a backoff that
        /// doubles per attempt; dead-lettered after `maxAttempts`.
        case retry(reason: String)
        /// Not sent for a reason that is not the record's (the CRM throttled): queued again at once,
        /// no attempt spent (the paused budget holds it back).
        case hold(reason: String)
        /// The CRM refused this record; retrying will not help.
        case failed(code: String, message: String)
    }

    // MARK: feeding

    /// Reads up to `count` new changes from `stream:crm` into the coalescing set; returns how many.
    public func feed(consumer: String, count: Int = 1000, maxWaitMs: Int64) async throws -> Int {
        let group = Keys.crmGroup(adapter: adapter)
        var entries = try await redis.send(["XREADGROUP", "GROUP", group, consumer, "COUNT", String(count), "STREAMS", Keys.crmStream, ">"])
            .array?.first?.array?.last?.array ?? []
        if entries.isEmpty {
            // A process that read entries and stopped before queueing them: take them over.
            let claimed = try await redis.send(["XAUTOCLAIM", Keys.crmStream, group, consumer, "30000", "0-0", "COUNT", String(count)])
            if let parts = claimed.array, parts.count >= 2 { entries = parts[1].array ?? [] }
        }
        guard !entries.isEmpty else { return 0 }
        var args = [group, String(maxWaitMs)]
        for e in entries {
            guard let parts = e.array, parts.count == 2, let id = parts[0].string else { continue }
            args += [id, parts[1].dictionary["customer"] ?? ""]
        }
        if redis.isCluster {
            // The dirty set and the stream are in two slots: queued first, then acknowledged (a crash
            // between redelivers the entries, and queueing them again changes nothing).
            let customers = stride(from: 3, to: args.count, by: 2).map { args[$0] }.filter { !$0.isEmpty }
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            if !customers.isEmpty { try await redis.send(["ZADD", Keys.crmDirty(adapter: adapter), "NX"] + customers.flatMap { [String(now + maxWaitMs), $0] }) }
            try await redis.send(["XACK", Keys.crmStream, group] + stride(from: 2, to: args.count, by: 2).map { args[$0] })
            return entries.count
        }
        _ = try await redis.fcall(StoreFunctions.library, "crm_feed", keys: [Keys.crmDirty(adapter: adapter), Keys.crmStream], args: args)
        return entries.count
    }

    /// Creates the adapter's consumer group; from the start of the stream, so changes made before the
    /// adapter was enabled are synced too.
    public func prepare() async throws {
        _ = try? await redis.send("XGROUP", "CREATE", Keys.crmStream, Keys.crmGroup(adapter: adapter), "0", "MKSTREAM")
    }

    /// Queues customers for a sync, 1,000 per script call (a resync of many never holds Redis for long):
    /// a manual resync, a replay of dead letters.
    public func enqueue(_ customers: [String]) async throws {
        for start in stride(from: 0, to: customers.count, by: 1000) {
            _ = try await redis.fcall(
                StoreFunctions.library, "crm_enqueue", keys: [Keys.crmDirty(adapter: adapter), Keys.crmRetry(adapter: adapter)],
                args: Array(customers[start..<min(start + 1000, customers.count)]))
        }
    }

    /// Queues every customer the adapter dead-lettered again, then deletes those dead letters (a
    /// crash in between queues some twice, which a sync absorbs). Returns how many customers.
    public func replayDeadLetters() async throws -> Int {
        var ids = [String]()
        var customers = Set<String>()
        var cursor = "-"
        while true {
            let page = try await redis.send(["XRANGE", Keys.crmDeadLetters, cursor, "+", "COUNT", "1000"]).array ?? []
            for e in page {
                guard let parts = e.array, parts.count == 2, let id = parts[0].string else { continue }
                let f = parts[1].dictionary
                if f["adapter"] == adapter, let c = f["customer"] {
                    customers.insert(c)
                    ids.append(id)
                }
                cursor = "(" + id
            }
            if page.count < 1000 { break }
        }
        try await enqueue(customers.sorted())
        for chunk in stride(from: 0, to: ids.count, by: 1000) {
            _ = try await redis.send(["XDEL", Keys.crmDeadLetters] + ids[chunk..<min(chunk + 1000, ids.count)])
        }
        return customers.count
    }



    // MARK: batches

    /// A batch of up to `size` customers when one is due, leased for `leaseMs` under `token`.
    public func take(size: Int, leaseMs: Int64, recent: Int, token: String) async throws -> Take {
        let keys = [Keys.crmDirty(adapter: adapter), Keys.crmInFlight(adapter: adapter), Keys.crmRetry(adapter: adapter)]
        let args = [String(size), String(leaseMs), String(recent), token, Keys.crmCustomer(adapter: adapter, customer: "")]
        if shards.layout == .perSlot { return try await takeInSteps(keys: keys, args: args, recent: recent, token: token) }
        let r = try await redis.fcall(StoreFunctions.library, "crm_take", keys: keys + [Keys.scoresMeta], args: args).array ?? []
        guard r.first?.string == "batch" else { return .wait(ms: Int64(r.count > 1 ? r[1].int ?? 100 : 100)) }
        var snapshots = [Snapshot]()
        var i = 1
        while i + 2 < r.count {
            if let c = r[i].string, let seq = r[i + 1].int, let doc = JSONValue.parse(Array((r[i + 2].string ?? "").utf8)) {
                snapshots.append(Snapshot(customer: c, seq: Int64(seq), document: doc))
            }
            i += 3
        }
        return snapshots.isEmpty ? .wait(ms: 50) : .batch(token: token, snapshots)
    }


    /// `take` on a cluster: the batch leased in the adapter's slot (`crm_lease`), each customer's
    /// snapshot taken in its own slot (`crm_snapshot`), then the leases of those merged away (their
    /// survivors queued instead) or gone released (`crm_release`).
    private func takeInSteps(keys: [String], args: [String], recent: Int, token: String) async throws -> Take {
        let r = try await redis.fcall(StoreFunctions.library, "crm_lease", keys: keys, args: args).array ?? []
        guard r.first?.string == "batch", r.count > 1, let now = r[1].int else { return .wait(ms: Int64(r.count > 1 ? r[1].int ?? 100 : 100)) }
        let leased = stride(from: 2, to: r.count - 1, by: 2).compactMap { i in r[i].string.map { ($0, Int64(r[i + 1].int ?? 0)) } }
        let replies = try await redis.fcallAll(
            StoreFunctions.library, "crm_snapshot",
            calls: leased.map { (keys: [Keys.customer($0.0)], args: shards.arguments(customer: $0.0) + [$0.0, String(now), String(recent)]) })
        var snapshots = [Snapshot]()
        var released = [(customer: String, survivor: String)]()
        for ((customer, seq), reply) in zip(leased, replies.map { $0.array ?? [] }) {
            switch reply.first?.string {
            case "ok":
                if let doc = JSONValue.parse(Array((reply[1].string ?? "").utf8)) { snapshots.append(Snapshot(customer: customer, seq: seq, document: doc)) }
            case "moved": released.append((customer, reply[1].string ?? ""))
            default: released.append((customer, ""))
            }
        }
        if !released.isEmpty {
            _ = try await redis.fcall(
                StoreFunctions.library, "crm_release",
                keys: [keys[0], keys[1]] + released.map { Keys.crmCustomer(adapter: adapter, customer: $0.customer) },
                args: [token, String(now)] + released.flatMap { [$0.customer, $0.survivor] })
        }
        return snapshots.isEmpty ? .wait(ms: 50) : .batch(token: token, snapshots)
    }

    // MARK: answers

    /// How often a customer's sync is retried, and the backoff between tries (the shared `RetryPolicy`).
    public struct RetryPolicy: Sendable {
        public var maxAttempts: Int
        public var backoff: GatewayCore.RetryPolicy
        public init(maxAttempts: Int, baseMs: Int64, capMs: Int64) {
            self.maxAttempts = maxAttempts
            backoff = GatewayCore.RetryPolicy(baseMs: baseMs, capMs: capMs)
        }

        /// The wait after each failed try, 1 to `maxAttempts`, for one customer (its own jitter).
        func delays() -> String {
            let random = Double.random(in: 0..<1)
            return (1...max(1, maxAttempts)).map { String(backoff.delay(afterAttempts: $0, random: random)) }.joined(separator: ",")
        }
    }

    /// Records the CRM's answer for each customer of batch `token`. Returns how many were synced.
    @discardableResult
    public func finish(token: String, results: [(customer: String, seq: Int64, result: Result)], policy: RetryPolicy, nowMs: Int64) async throws -> Int {
        var keys = [
            Keys.crmInFlight(adapter: adapter), Keys.crmRetry(adapter: adapter), Keys.crmDirty(adapter: adapter), Keys.crmStatus(adapter: adapter),
            Keys.crmDeadLetters,
        ]
        var args = [adapter, token, String(policy.maxAttempts), String(nowMs)]
        for (c, seq, r) in results {
            var record: Identity?
            if case .synced(let id?) = r, !id.isEmpty { record = Identity(kind: .crm, account: adapter, value: id) }
            keys += [Keys.crmCustomer(adapter: adapter, customer: c), Keys.customer(c), Keys.customerIdentities(c), record.map(Keys.identity) ?? ""]
            switch r {
            case .synced(let recordId): args += [c, String(seq), "ok", recordId ?? "", record?.storageForm ?? ""]
            case .retry(let reason): args += [c, String(seq), "retry", reason, policy.delays()]
            case .hold(let reason): args += [c, String(seq), "hold", reason, ""]
            case .failed(let code, let message): args += [c, String(seq), "dead", code, message]
            }
        }
        guard shards.layout == .perSlot else { return try await redis.fcall(StoreFunctions.library, "crm_finish", keys: keys, args: args).int ?? 0 }
        return try await finishInSteps(keys: Array(keys[0..<4]) + results.map { Keys.crmCustomer(adapter: adapter, customer: $0.customer) }, args: args, nowMs: nowMs)
    }

    /// `finish` on a cluster: the queue's half in the adapter's slot (`crm_settle`); then each synced
    /// record id bound to its customer (a customer merged away meanwhile has its survivor queued
    /// instead), and the dead letters appended.
    private func finishInSteps(keys: [String], args: [String], nowMs: Int64) async throws -> Int {
        let r = try await redis.fcall(StoreFunctions.library, "crm_settle", keys: keys, args: args).array ?? []
        guard r.count == 3 else { return 0 }
        let binds = r[1].strings, dead = r[2].strings
        for i in stride(from: 0, to: binds.count - 1, by: 2) {
            let (customer, identity) = (binds[i], binds[i + 1])
            let h = try await redis.send("HMGET", Keys.customer(customer), "createdAt", "mergedInto").array ?? []
            if h.count == 2, let survivor = h[1].string {
                try await redis.send("ZADD", Keys.crmDirty(adapter: adapter), "NX", String(nowMs), survivor)
            } else if h.first?.string != nil, try await redis.send("SET", Keys.identity(storageForm: identity), customer, "NX").string == "OK" {
                try await redis.send("SADD", Keys.customerIdentities(customer), identity)
            }
        }
        if !dead.isEmpty {
            _ = try await redis.pipelineChecked(stride(from: 0, to: dead.count - 2, by: 3).map { i in
                ["XADD", Keys.crmDeadLetters, "MAXLEN", "~", "100000", "*", "adapter", adapter, "customer", dead[i], "reason", dead[i + 1], "message", dead[i + 2], "at", String(nowMs)]
            })
        }
        return r[0].int ?? 0
    }


    // MARK: status

    public struct Status: Sendable {
        public var waiting = 0
        public var inFlight = 0
        public var retrying = 0
        public var fields = [String: String]()
    }

    public func status() async throws -> Status {
        let r = try await redis.pipeline([
            ["ZCARD", Keys.crmDirty(adapter: adapter)], ["ZCARD", Keys.crmInFlight(adapter: adapter)], ["ZCARD", Keys.crmRetry(adapter: adapter)],
            ["HGETALL", Keys.crmStatus(adapter: adapter)],
        ])
        var s = Status()
        s.waiting = r[0].int ?? 0
        s.inFlight = r[1].int ?? 0
        s.retrying = r[2].int ?? 0
        s.fields = r[3].dictionary
        return s
    }

    /// The customer's sync state with this adapter (seq, syncedSeq, recordId, syncedAt, attempts,
    /// lastError, lastErrorAt) and whether it waits, is on the wire or backs off.
    public func customerStatus(_ customer: String) async throws -> (fields: [String: String], queue: String?) {
        let r = try await redis.pipeline([
            ["HGETALL", Keys.crmCustomer(adapter: adapter, customer: customer)], ["ZSCORE", Keys.crmDirty(adapter: adapter), customer],
            ["ZSCORE", Keys.crmInFlight(adapter: adapter), customer], ["ZSCORE", Keys.crmRetry(adapter: adapter), customer],
        ])
        var fields = r[0].dictionary
        fields["lease"] = nil
        let queue = r[2].string != nil ? "in_flight" : r[3].string != nil ? "retrying" : r[1].string != nil ? "waiting" : nil
        return (fields, queue)
    }

    /// Records the adapter's last error and counts (a whole batch refused or throttled).
    public func noteError(_ text: String, nowMs: Int64, throttled: Bool) async throws {
        _ = try await redis.send([
            "HSET", Keys.crmStatus(adapter: adapter), "lastError", String(text.prefix(500)), "lastErrorAt", String(nowMs),
        ])
        if throttled { _ = try await redis.send("HINCRBY", Keys.crmStatus(adapter: adapter), "throttled", "1") }
    }

    /// The newest interaction each customer had sent as a CRM activity (ms; 0 = none yet).
    public func activityMarks(_ customers: [String]) async throws -> [String: Int64] {
        guard !customers.isEmpty else { return [:] }
        let r = try await redis.pipeline(customers.map { ["HGET", Keys.crmCustomer(adapter: adapter, customer: $0), "activityAt"] })
        return Dictionary(zip(customers, r.map { $0.string.flatMap { Int64($0) } ?? 0 }), uniquingKeysWith: max)
    }

    /// Records the newest interaction sent as an activity per customer, and counts them.
    public func markActivities(_ marks: [String: Int64], added: Int) async throws {
        var commands = marks.map { ["HSET", Keys.crmCustomer(adapter: adapter, customer: $0.key), "activityAt", String($0.value)] }
        if added > 0 { commands.append(["HINCRBY", Keys.crmStatus(adapter: adapter), "activities", String(added)]) }
        guard !commands.isEmpty else { return }
        _ = try await redis.pipelineChecked(commands)
    }

    public func noteCall() async throws {
        _ = try await redis.send("HINCRBY", Keys.crmStatus(adapter: adapter), "calls", "1")
    }
}

// MARK: erasures

extension CRMOutbox {
    /// A customer this CRM must delete (`<customer>|<CRM record id>`, queued by an erasure), once
    /// due, gone from our side, and not on the wire in a batch (an upsert in flight could land after
    /// the delete).
    public func dueErasure(nowMs: Int64, leaseMs: Int64) async throws -> (customer: String, recordId: String?)? {
        let r = try await redis.send("ZRANGEBYSCORE", Keys.crmErase(adapter: adapter), "-inf", String(nowMs), "LIMIT", "0", "1").strings
        guard let member = r.first else { return nil }
        let parts = member.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let customer = parts[0]
        // Until the erasure's own step has removed the customer, a sync could still write it back.
        if try await redis.send("HEXISTS", Keys.customer(customer), "createdAt").int == 1 {
            _ = try await redis.send("ZADD", Keys.crmErase(adapter: adapter), String(nowMs + 5000), member)
            return nil
        }
        if let lease = try await redis.send("ZSCORE", Keys.crmInFlight(adapter: adapter), customer).string.flatMap(Double.init), Int64(lease) > nowMs {
            _ = try await redis.send("ZADD", Keys.crmErase(adapter: adapter), String(Int64(lease) + 1), member)
            return nil
        }
        // Leased for the call: another process does not send the same delete meanwhile.
        _ = try await redis.send("ZADD", Keys.crmErase(adapter: adapter), String(nowMs + leaseMs), member)
        return (customer, parts.count > 1 && !parts[1].isEmpty ? parts[1] : nil)
    }

    public enum ErasureResult: Sendable, Equatable {
        /// Deleted (or the CRM had no such record).
        case erased
        case retry(afterMs: Int64, reason: String)
        /// Refused for good: dead-lettered for a person to handle.
        case refused(code: String, message: String)
        /// The CRM's record id, looked up (a CRM that deletes only by its own id): deleted next.
        case found(recordId: String)
    }

    public func finishErasure(customer: String, recordId: String?, _ result: ErasureResult, nowMs: Int64) async throws {
        let member = "\(customer)|\(recordId ?? "")"
        let key = Keys.crmErase(adapter: adapter)
        switch result {
        case .erased:
            _ = try await redis.pipelineChecked([
                ["ZREM", key, member], ["ZREM", Keys.crmInFlight(adapter: adapter), customer], ["HINCRBY", Keys.crmStatus(adapter: adapter), "erased", "1"],
            ])
        case .retry(let after, let reason):
            _ = try await redis.pipelineChecked([
                ["ZADD", key, String(nowMs + after), member],
                ["HSET", Keys.crmStatus(adapter: adapter), "lastError", "erase: " + String(reason.prefix(400)), "lastErrorAt", String(nowMs)],
            ])
        case .found(let id):
            _ = try await redis.pipelineChecked([["ZADD", key, String(nowMs), "\(customer)|\(id)"], ["ZREM", key, member]])
        case .refused(let code, let message):
            _ = try await redis.pipelineChecked([
                ["ZREM", key, member], ["ZREM", Keys.crmInFlight(adapter: adapter), customer],
                [
                    "XADD", Keys.crmDeadLetters, "MAXLEN", "~", "100000", "*", "adapter", adapter, "customer", customer, "reason", "erase_refused:\(code)",
                    "message", String(message.prefix(300)), "at", String(nowMs),
                ],
                ["HINCRBY", Keys.crmStatus(adapter: adapter), "deadLettered", "1"],
            ])
        }
    }

    /// Erasures waiting for this CRM.
    public func pendingErasures() async throws -> Int { try await redis.send("ZCARD", Keys.crmErase(adapter: adapter)).int ?? 0 }
}
