import Foundation
import GatewayCore
import GatewayCrypto
import RedisClient

/// Erasure of a person (`DELETE /api/v1/customers/{id}`), as a job in Redis (`Keys.erasure`):
/// 1. the job is written with its plan, and each CRM that holds a record is queued to delete it;
/// 2. `customer_erase` removes the person's records, identities and index entries at once;
/// 3. the cleanup removes their messages, queue and audience entries, sessions and CRM state;
/// 4. the stream purge (`runPending`, in the background) deletes the stream entries and import
///    lines that name them, then the job keeps only counts.
/// A process that stops anywhere leaves the job active; the next `runPending` completes it.
public struct CustomerErasure: Sendable {
    let redis: RedisPool
    let suppression: AddressSuppression
    let crmAdapters: [String]
    /// The streams the purge reads (inbound, CRM, journeys, dead letters, outbound, sandbox).
    let streams: [String]
    let clock: @Sendable () -> Int64
    let owner = "\(ProcessInfo.processInfo.hostName)-\(getpid())-\(UUID().uuidString.prefix(8))"

    public init(redis: RedisPool, suppression: AddressSuppression, crmAdapters: [String], streams: [String], clock: @escaping @Sendable () -> Int64) {
        self.redis = redis
        self.suppression = suppression
        self.crmAdapters = crmAdapters
        self.streams = streams
        self.clock = clock
    }

    /// The streams every gateway writes about customers, plus the outbound and sandbox ones of
    /// `channels`, each partitioned stream with all its partitions.
    public static func streams(channels: [String], partitions: StreamPartitions) -> [String] {
        partitions.all(Keys.inboundStream) + [Keys.crmStream, Keys.journeySignals, Keys.deadLetters, Keys.crmDeadLetters]
            + channels.flatMap {
                partitions.all(Keys.outboundStream(channel: $0, lane: .bulk)) + partitions.all(Keys.outboundStream(channel: $0, lane: .transactional))
                    + [Keys.sandbox(channel: $0)]
            }
    }

    /// How long a finished erasure's record (counts, who asked, when) is kept.
    public static let recordTTLMs: Int64 = 30 * 86_400_000

    public struct Job: Sendable, Equatable {
        public let id: String
        public let customer: String
        /// erasing, purging (stream entries), done.
        public let state: String
        public let requestedBy: String
        public let requestedAt: Int64
        public let keysDeleted: Int
        /// Addresses kept as keyed-hash suppression entries (they had opted out).
        public let suppressed: Int
        /// CRM adapters asked to delete their record.
        public let crm: [String]
        public let streamEntriesRemoved: Int
        public let importLinesRemoved: Int
        public let finishedAt: Int64?

        init(id: String, _ f: [String: String]) {
            self.id = id
            customer = f["customer"] ?? ""
            state = f["state"] ?? "erasing"
            requestedBy = f["requestedBy"] ?? ""
            requestedAt = Int64(f["requestedAt"] ?? "") ?? 0
            keysDeleted = Int(f["keysDeleted"] ?? "") ?? 0
            suppressed = Int(f["suppressed"] ?? "") ?? 0
            crm = (f["crm"] ?? "").split(separator: ",").map(String.init)
            streamEntriesRemoved = Int(f["streamEntriesRemoved"] ?? "") ?? 0
            importLinesRemoved = Int(f["importLinesRemoved"] ?? "") ?? 0
            finishedAt = f["finishedAt"].flatMap { Int64($0) }
        }
    }

    /// Erases the person `id` names (following merges); nil when there is no such customer. The
    /// person is gone from every lookup when this returns; the stream purge goes on in the background.
    public func erase(_ id: String, by actor: String) async throws -> Job? {
        guard let footprint = try await CustomerFootprint.read(id, redis: redis, suppression: suppression, crmAdapters: crmAdapters) else { return nil }
        let now = clock()
        let jobId = ULID.make(milliseconds: now)
        let plan = try await plan(footprint, nowMs: now)
        var commands: [[String]] = [
            ["MULTI"],
            [
                "HSET", Keys.erasure(jobId), "customer", footprint.survivor, "state", "erasing", "requestedBy", actor, "requestedAt", String(now),
                "crm", Array(Set(plan.crmErasures.map(\.adapter))).sorted().joined(separator: ","),
            ],
            ["ZADD", Keys.activeErasures, String(now), jobId],
        ]
        commands += plan.crmErasures.map { ["ZADD", Keys.crmErase(adapter: $0.adapter), "NX", String(now), $0.member] }
        // Leased while this call works on it, so the background run does not do the same at once.
        commands.append(["SET", Keys.erasureLease(jobId), owner, "PX", "60000"])
        if redis.isCluster {
            // The job's keys, the active list and the CRM queues are in different slots: the job is
            // written before it is listed, so the background run never finds a listed job missing.
            for c in commands.dropFirst() { try await redis.send(c) }
        } else {
            _ = try await redis.pipelineChecked(commands + [["EXEC"]])
        }
        try await apply(jobId: jobId, customer: footprint.survivor, first: plan)
        _ = try await redis.send("DEL", Keys.erasureLease(jobId))
        return try await job(jobId)
    }

    public func job(_ id: String) async throws -> Job? {
        guard ULID.isValid(id) else { return nil }
        let f = try await redis.send("HGETALL", Keys.erasure(id)).dictionary
        return f["customer"] == nil ? nil : Job(id: id, f)
    }

    func plan(_ f: CustomerFootprint, nowMs: Int64) async throws -> ErasurePlan {
        let r = try await redis.pipelineChecked([["ZRANGE", Keys.campaigns, "0", "-1"], ["ZRANGE", Keys.journeys, "0", "-1"]])
        let campaigns = r[0].strings
        // On a cluster an activation adopts its snapshot by name (Campaign.snapshot).
        let adopted = redis.isCluster && !campaigns.isEmpty ? try await redis.pipelineChecked(campaigns.map { ["HGET", Keys.campaign($0), "snapshot"] }) : []
        let audiences = campaigns.enumerated().map { i, c in (i < adopted.count ? adopted[i].string : nil) ?? Keys.campaignAudience(c) }
        return ErasurePlan(
            f, campaignAudiences: audiences, journeys: r[1].strings, crmAdapters: crmAdapters, suppression: suppression, nowMs: nowMs,
            layout: redis.isCluster ? .perSlot : .single, streams: redis.streams)
    }

    /// Steps 2 and 3: the atomic erase (read again while the person changed under it), then the
    /// cleanup; the needles and counts go to the job. `first`: the plan already made, if any.
    func apply(jobId: String, customer: String, first: ErasurePlan?) async throws {
        var plan = first
        var needles = Set<String>()
        var cleanup = [[String]]()
        var deleted = 0
        var suppressed = 0
        var gone = false
        attempts: for _ in 0..<8 {
            if plan == nil {
                guard let f = try await CustomerFootprint.read(customer, redis: redis, suppression: suppression, crmAdapters: crmAdapters) else {
                    gone = true
                    break
                }
                plan = try await self.plan(f, nowMs: clock())
            }
            guard let p = plan else { break }
            needles.formUnion(p.needles)
            cleanup += p.cleanup
            // Keep what the cleanup and the purge need before the person is gone, in case this process stops.
            _ = try await redis.send(
                "HSET", Keys.erasure(jobId), "needles", JSONValue.array(needles.sorted().map(JSONValue.string)).text,
                "cleanup", JSONValue.array(cleanup.map { .array($0.map(JSONValue.string)) }).text)
            let r = try await redis.fcall(StoreFunctions.library, "customer_erase", keys: p.keys, args: p.args).array ?? []
            switch r.first?.string {
            case "ok":
                deleted += r.count > 1 ? r[1].int ?? 0 : 0
                suppressed += p.suppressed
                plan = nil
                if !p.crmErasures.isEmpty {
                    _ = try await redis.pipelineChecked(p.crmErasures.map { ["ZADD", Keys.crmErase(adapter: $0.adapter), "NX", String(clock()), $0.member] })
                }
                gone = true
                break attempts
            default:
                plan = nil  // the identities or tags changed, or the person was merged into another, meanwhile: read again
            }
        }
        // Changed under us eight times in a row: the job stays `erasing`, and the background run goes on with it.
        guard gone else { return }
        if cleanup.isEmpty {
            // The person was already gone: a process stopped after the atomic step; its cleanup is in the job.
            let stored = try await redis.send("HGET", Keys.erasure(jobId), "cleanup").string ?? "[]"
            if case .array(let commands)? = JSONValue.parse(Array(stored.utf8)) {
                cleanup = commands.map { c in if case .array(let parts) = c { parts.compactMap(\.scalarText) } else { [] } }.filter { !$0.isEmpty }
            }
        }
        try await run(cleanup)
        var done = ["HSET", Keys.erasure(jobId), "state", "purging"]
        if deleted > 0 || suppressed > 0 { done += ["keysDeleted", String(deleted), "suppressed", String(suppressed)] }
        _ = try await redis.pipelineChecked([done, ["HDEL", Keys.erasure(jobId), "cleanup"]])
    }

    /// Runs cleanup steps: Redis commands, 500 to a pipeline, and `message_erase` calls.
    func run(_ cleanup: [[String]]) async throws {
        let functions: Set = [ErasurePlan.messageErase, ErasurePlan.messageEraseSlot, ErasurePlan.customerErase, ErasurePlan.identityRelease]
        let calls = cleanup.filter { functions.contains($0.first ?? "") }
        let commands = cleanup.filter { !functions.contains($0.first ?? "") }
        for call in calls where call.count >= 3 {
            if call[0] == ErasurePlan.messageErase {
                _ = try await redis.fcall(StoreFunctions.library, ErasurePlan.messageErase, keys: Array(call.dropFirst()), args: [Keys.outboundGroup])
            } else if let n = Int(call[1]), call.count >= 2 + n {
                _ = try await redis.fcall(StoreFunctions.library, call[0], keys: Array(call[2..<(2 + n)]), args: Array(call[(2 + n)...]))
            }
        }
        for start in stride(from: 0, to: commands.count, by: 500) {
            _ = try await redis.pipelineChecked(Array(commands[start..<min(start + 500, commands.count)]))
        }
        // A cluster's erased messages counted into their slots' outboxes: flushed into the campaigns' stats.
        let outboxes = calls.filter { $0.first == ErasurePlan.messageEraseSlot && $0.count > 3 }.map { IndexShard(slot: HashSlot.of($0[2])) }
        try await MessageStore(redis: redis).flushCounters(Set(outboxes))
    }

    // MARK: the stream purge

    /// Runs the purge of every active erasure until cancelled.
    public func run() async {
        while !Task.isCancelled {
            let worked = (try? await runPending()) ?? false
            try? await Task.sleep(for: .milliseconds(worked ? 10 : 1000))
        }
    }

    /// Completes one active erasure this process can lease; false when none could be completed.
    @discardableResult
    public func runPending() async throws -> Bool {
        for id in try await redis.send("ZRANGE", Keys.activeErasures, "0", "9").strings {
            guard try await redis.send("SET", Keys.erasureLease(id), owner, "NX", "PX", "60000").string == "OK" else { continue }
            let f = try await redis.send("HGETALL", Keys.erasure(id)).dictionary
            var purged = false
            if let customer = f["customer"] {
                if f["state"] == "erasing" { try await apply(jobId: id, customer: customer, first: nil) }
                if try await redis.send("HGET", Keys.erasure(id), "state").string == "purging" {
                    try await purge(id)
                    purged = true
                }
            } else {
                _ = try await redis.send("ZREM", Keys.activeErasures, id)
            }
            _ = try await redis.send("DEL", Keys.erasureLease(id))
            if purged { return true }
        }
        return false
    }

    /// Deletes the stream entries and rejected import lines that name the person; resumable (the
    /// job keeps its stream and cursor).
    func purge(_ id: String) async throws {
        let key = Keys.erasure(id)
        let f = try await redis.send("HGETALL", key).dictionary
        let needles: [String] = {
            guard case .array(let a)? = JSONValue.parse(Array((f["needles"] ?? "[]").utf8)) else { return [] }
            return a.compactMap(\.scalarText)
        }()
        let matcher = NeedleMatcher(needles)
        var index = Int(f["purgeStream"] ?? "") ?? 0
        var cursor = f["purgeCursor"] ?? "-"
        while index < streams.count, !matcher.isEmpty {
            let stream = streams[index]
            let entries = try await redis.send("XRANGE", stream, cursor, "+", "COUNT", "500").array ?? []
            var matched = [String]()
            var references = [(entry: String, fields: [String: String])]()
            var last: String?
            for e in entries {
                guard let parts = e.array, parts.count == 2, let entryId = parts[0].string else { continue }
                last = entryId
                guard parts[1].strings.contains(where: matcher.matches) else { continue }
                let fields = parts[1].dictionary
                if fields["c"] != nil, fields["u"] != nil, fields["id"] != nil { references.append((entryId, fields)) } else { matched.append(entryId) }
            }
            if !matched.isEmpty { _ = try await redis.send(["XDEL", stream] + matched) }
            // A queued campaign reference is counted as skipped (erased) as it goes, so the campaign completes.
            if redis.isCluster {
                try await eraseReferences(references, stream: stream)
            } else {
                for (entry, f) in references {
                    _ = try await redis.fcall(
                        StoreFunctions.library, "campaign_reference_erase",
                        keys: [stream, Keys.campaignStats(f["c"] ?? ""), Keys.message(f["id"] ?? "")], args: [entry, f["v"] ?? "", Keys.outboundGroup])
                }
            }
            matched += references.map(\.entry)
            if entries.count < 500 || last == nil {
                index += 1
                cursor = "-"
            } else {
                cursor = "(" + last!
            }
            _ = try await redis.pipelineChecked([
                ["HSET", key, "purgeStream", String(index), "purgeCursor", cursor], ["HINCRBY", key, "streamEntriesRemoved", String(matched.count)],
            ])
        }
        var lines = 0
        if !matcher.isEmpty {
            for imp in try await redis.send("ZRANGE", Keys.customerImports, "0", "-1").strings {
                let list = Keys.customerImportRejected(imp)
                for line in try await redis.send("LRANGE", list, "0", "-1").strings where matcher.matches(line) {
                    lines += try await redis.send("LREM", list, "0", line).int ?? 0
                }
            }
        }
        let done = [
            ["HSET", key, "state", "done", "finishedAt", String(clock()), "importLinesRemoved", String(lines)],
            ["HDEL", key, "needles", "purgeStream", "purgeCursor"], ["PEXPIRE", key, String(Self.recordTTLMs)],
        ]
        // On a cluster the active list is in another slot: the job is marked done first (a rerun of a
        // done job's purge finds nothing), then unlisted.
        if redis.isCluster {
            _ = try await redis.pipelineChecked([["MULTI"]] + done + [["EXEC"]])
            try await redis.send("ZREM", Keys.activeErasures, id)
        } else {
            _ = try await redis.pipelineChecked([["MULTI"]] + done + [["ZREM", Keys.activeErasures, id], ["EXEC"]])
        }
    }
}

/// Whether a stream value names the person: equal to one of the needles, or (long free text such as
/// a payload or a rendered request) containing one.
struct NeedleMatcher {
    let exact: Set<String>
    let needles: [String]

    init(_ needles: [String]) {
        self.needles = needles.filter { !$0.isEmpty }
        exact = Set(self.needles)
    }

    var isEmpty: Bool { needles.isEmpty }

    func matches(_ value: String) -> Bool {
        if exact.contains(value) { return true }
        guard value.utf8.count > 24 else { return false }
        return needles.contains { value.range(of: $0) != nil }
    }
}

extension CustomerErasure {
    /// A cluster's `campaign_reference_erase`: each reference settled in its message's slot
    /// (`campaign_reference_erase_slot`), then the entries deleted and the counts flushed.
    func eraseReferences(_ references: [(entry: String, fields: [String: String])], stream: String) async throws {
        guard !references.isEmpty else { return }
        var shards = Set<IndexShard>()
        for (entry, f) in references {
            let id = f["id"] ?? ""
            let shard = MessageStore.shard(ofMessage: id)
            shards.insert(shard)
            _ = try await redis.fcall(
                StoreFunctions.library, "campaign_reference_erase_slot", keys: [Keys.counterOutbox(shard), Keys.message(id)],
                args: [entry, f["v"] ?? "", Keys.campaignStats(f["c"] ?? ""), String(MessageStore.customerIndexTTLMs)])
        }
        _ = try await redis.pipelineChecked([["XACK", stream, Keys.outboundGroup] + references.map(\.entry), ["XDEL", stream] + references.map(\.entry)])
        try await MessageStore(redis: redis).flushCounters(shards)
    }
}
