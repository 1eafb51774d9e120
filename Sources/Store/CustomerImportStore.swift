import Foundation
import GatewayCore
import RedisClient

/// Customer import jobs in Redis. The upload is checked as it streams and spooled in chunks of rows
/// (`imp:{id}:c:<n>`); any gateway process then applies the chunks in order, each exactly once
/// (`customers_import_chunk` checks and moves the job's checkpoint in the same step), so a process
/// that dies mid-import leaves the rest to another one, and nothing is applied twice.
public final class CustomerImportStore: Sendable {
    let redis: RedisPool
    let timelineCap: Int
    let streamMaxLen: Int
    /// Rejected lines kept per job (all are counted).
    public static let keptRejections = 1000
    /// Job data is kept this long after the job ends.
    public static let retentionSeconds = 7 * 86_400
    /// A job still receiving whose uploader has not written for this long has lost its uploader.
    public static let receiveTimeoutMs: Int64 = 120_000

    /// Applies chunks as steps on a cluster.
    let customers: CustomerStore

    public init(redis: RedisPool, config: GatewayConfig) {
        self.redis = redis
        customers = CustomerStore(redis: redis, config: config)
        timelineCap = config.customers.timelineCap
        streamMaxLen = config.streams.inboundMaxLen
    }

    public enum State: String, Sendable {
        /// The upload is still arriving (chunks already received are being applied).
        case receiving
        /// Received whole; chunks left to apply.
        case applying
        case completed
        /// The upload broke off; the rows applied before stay applied.
        case failed
    }

    /// A job's progress.
    public struct Job: Sendable {
        public let id: String
        public let state: State
        public let format: String
        public let source: String
        public let bytes: Int
        public let rowsRead: Int
        public let valid: Int
        public let rejected: Int
        public let created: Int
        public let updated: Int
        public let merged: Int
        public let chunks: Int
        public let chunksApplied: Int
        public let createdAt: Int64
        public let receivedAt: Int64?
        public let completedAt: Int64?
        public let error: String?
        /// The first rejected lines, in order.
        public let rejections: [CustomerImportRow.Rejected]

        init(id: String, hash h: [String: String], rejections: [CustomerImportRow.Rejected]) {
            func int(_ k: String) -> Int { Int(h[k] ?? "") ?? 0 }
            self.id = id
            state = State(rawValue: h["state"] ?? "") ?? .failed
            format = h["format"] ?? ""
            source = h["source"] ?? ""
            bytes = int("bytes")
            rowsRead = int("rowsRead")
            valid = int("valid")
            rejected = int("rejected")
            created = int("created")
            updated = int("updated")
            merged = int("merged")
            chunks = int("chunks")
            chunksApplied = int("chunksApplied")
            createdAt = Int64(h["createdAt"] ?? "") ?? 0
            receivedAt = h["receivedAt"].flatMap { Int64($0) }
            completedAt = h["completedAt"].flatMap { Int64($0) }
            error = h["error"]
            self.rejections = rejections
        }
    }

    /// Starts a job in state `receiving`.
    public func create(id: String, format: String, source: String, nowMs: Int64) async throws {
        _ = try await redis.pipelineChecked([
            [
                "HSET", Keys.customerImport(id), "id", id, "state", State.receiving.rawValue, "format", format, "source", source, "createdAt", String(nowMs),
                "updatedAt", String(nowMs), "chunks", "0", "chunksApplied", "0",
            ],
            ["ZADD", Keys.customerImports, String(nowMs), id],
            ["SADD", Keys.activeCustomerImports, id],
        ])
    }

    /// What the upload has brought since the last call: checked rows (spooled as chunk `index` when
    /// there are any), rejected lines, bytes and rows read.
    public struct Received: Sendable {
        public var rows: [CustomerImportRow] = []
        public var rejected: [CustomerImportRow.Rejected] = []
        public var rowsRead = 0
        public var bytes = 0
        public init() {}
    }

    /// Spools what was received; returns the next chunk index. Each row gets the id a new customer
    /// would have, fixed now, so applying the chunk again could not make a second customer.
    public func spool(id: String, _ r: Received, chunk index: Int, keptRejections alreadyKept: Int, nowMs: Int64) async throws -> Int {
        let job = Keys.customerImport(id)
        var commands = [[String]]()
        var next = index
        if !r.rows.isEmpty {
            let json = JSONValue.array(
                r.rows.map { row in
                    guard case .array(var parts) = row.json else { return row.json }
                    parts.append(.string(ULID.make(milliseconds: nowMs)))
                    return .array(parts)
                })
            commands.append(["SET", Keys.customerImportChunk(id, index), json.text])
            next += 1
        }
        let keep = r.rejected.prefix(max(0, Self.keptRejections - alreadyKept))
        if !keep.isEmpty {
            commands.append(
                ["RPUSH", Keys.customerImportRejected(id)]
                    + keep.map { JSONValue.object(["line": .int(Int64($0.line)), "reason": .string($0.reason)]).text })
        }
        commands += [
            ["HINCRBY", job, "rowsRead", String(r.rowsRead)], ["HINCRBY", job, "valid", String(r.rows.count)],
            ["HINCRBY", job, "rejected", String(r.rejected.count)], ["HINCRBY", job, "bytes", String(r.bytes)],
            ["HSET", job, "chunks", String(next), "updatedAt", String(nowMs)],
        ]
        _ = try await redis.pipelineChecked(commands)
        return next
    }

    /// The upload is whole: the runner finishes the job once every chunk is applied.
    public func received(id: String, nowMs: Int64) async throws {
        _ = try await redis.send("HSET", Keys.customerImport(id), "state", State.applying.rawValue, "receivedAt", String(nowMs), "updatedAt", String(nowMs))
    }

    /// The upload broke off (or its uploader died): chunks not yet applied are dropped; the rows
    /// applied stay. Sending the file again updates them (an import is idempotent per row).
    public func fail(id: String, reason: String, nowMs: Int64) async throws {
        let h = try await redis.send("HGETALL", Keys.customerImport(id)).dictionary
        let chunks = Int(h["chunks"] ?? "") ?? 0
        let applied = Int(h["chunksApplied"] ?? "") ?? 0
        var commands: [[String]] = [
            ["HSET", Keys.customerImport(id), "state", State.failed.rawValue, "error", reason, "completedAt", String(nowMs), "updatedAt", String(nowMs)],
            ["SREM", Keys.activeCustomerImports, id],
        ]
        if applied < chunks { commands.append(["DEL"] + (applied..<chunks).map { Keys.customerImportChunk(id, $0) }) }
        commands += expiries(id)
        _ = try await redis.pipelineChecked(commands)
    }

    func expiries(_ id: String) -> [[String]] {
        [Keys.customerImport(id), Keys.customerImportRejected(id)].map { ["EXPIRE", $0, String(Self.retentionSeconds)] }
    }

    public func job(id: String) async throws -> Job? {
        guard ULID.isValid(id) else { return nil }
        let r = try await redis.pipelineChecked([
            ["HGETALL", Keys.customerImport(id)], ["LRANGE", Keys.customerImportRejected(id), "0", String(Self.keptRejections - 1)],
        ])
        let hash = r[0].dictionary
        guard hash["state"] != nil else { return nil }
        let rejections = r[1].strings.compactMap { text -> CustomerImportRow.Rejected? in
            guard case .object(let o)? = JSONValue.parse(Array(text.utf8)), case .int(let line)? = o["line"], case .string(let reason)? = o["reason"] else {
                return nil
            }
            return CustomerImportRow.Rejected(line: Int(line), reason: reason)
        }
        return Job(id: id, hash: hash, rejections: rejections)
    }

    /// The newest jobs first, a page at a time (`next` is where the following page starts).
    public func recent(limit: Int, before: PageCursor? = nil) async throws -> (jobs: [Job], next: PageCursor?) {
        let page = try await redis.newestFirst(Keys.customerImports, limit: limit, before: before)
        var jobs = [Job]()
        for id in page.ids { if let j = try await job(id: id) { jobs.append(j) } }
        return (jobs, page.next)
    }

    public func active() async throws -> [String] { try await redis.send("SMEMBERS", Keys.activeCustomerImports).strings }

    /// Takes (or keeps) the job's lease for `ms`; false when another process holds it.
    public func lease(id: String, owner: String, ms: Int) async throws -> Bool {
        let key = Keys.customerImportLease(id)
        if try await redis.send("SET", key, owner, "NX", "PX", String(ms)).string == "OK" { return true }
        guard try await redis.send("GET", key).string == owner else { return false }
        _ = try await redis.send("PEXPIRE", key, String(ms))
        return true
    }

    public enum Step: Sendable, Equatable {
        /// A chunk was applied.
        case applied(created: Int, updated: Int, merged: Int)
        /// Nothing to do now (the next chunk has not arrived yet).
        case waiting
        /// The job is finished (completed or failed).
        case done
    }

    /// Applies the job's next chunk, or finishes the job when every chunk is applied and the upload
    /// is whole, or fails a job whose uploader went silent.
    public func step(id: String, nowMs: Int64) async throws -> Step {
        let h = try await redis.send("HGETALL", Keys.customerImport(id)).dictionary
        guard let state = h["state"].flatMap(State.init(rawValue:)), state == .receiving || state == .applying else {
            _ = try await redis.send("SREM", Keys.activeCustomerImports, id)
            return .done
        }
        let chunks = Int(h["chunks"] ?? "") ?? 0
        let applied = Int(h["chunksApplied"] ?? "") ?? 0
        if applied < chunks, redis.isCluster {
            return try await applyInSteps(id: id, chunk: applied, nowMs: nowMs)
        }
        if applied < chunks {
            let source = "import:\(id)"
            let r = try await redis.fcall(
                StoreFunctions.library, "customers_import_chunk", keys: [Keys.customerImport(id), Keys.customerImportChunk(id, applied)],
                args: [String(applied), String(nowMs), String(timelineCap), String(streamMaxLen), source]
            ).array ?? []
            guard r.first?.string == "ok" else { return .waiting }
            return .applied(created: r[1].int ?? 0, updated: r[2].int ?? 0, merged: r[3].int ?? 0)
        }
        if state == .applying {
            _ = try await redis.pipelineChecked(
                [
                    ["HSET", Keys.customerImport(id), "state", State.completed.rawValue, "completedAt", String(nowMs), "updatedAt", String(nowMs)],
                    ["SREM", Keys.activeCustomerImports, id],
                ] + expiries(id))
            return .done
        }
        if nowMs - (Int64(h["updatedAt"] ?? "") ?? 0) > Self.receiveTimeoutMs {
            try await fail(id: id, reason: "the upload stopped arriving (the gateway receiving it went away): send the file again", nowMs: nowMs)
            return .done
        }
        return .waiting
    }

    /// A chunk on a cluster: its rows applied as steps (`CustomerStore.importRowsInSteps`), then
    /// counted and the checkpoint moved once (`import_chunk_done`, in the job's slot). A crash between
    /// the two applies the chunk again, which finds the customers it created.
    func applyInSteps(id: String, chunk index: Int, nowMs: Int64) async throws -> Step {
        guard let data = try await redis.send("GET", Keys.customerImportChunk(id, index)).string else { return .waiting }
        let rows = Self.stepRows(data)
        let (created, updated, merged) = try await customers.importRowsInSteps(rows, nowMs: nowMs, source: "import:\(id)")
        let done = try await redis.fcall(
            StoreFunctions.library, "import_chunk_done", keys: [Keys.customerImport(id), Keys.customerImportChunk(id, index)],
            args: [String(index), String(nowMs), String(created), String(updated), String(merged)]
        ).int
        return done == 1 ? .applied(created: created, updated: updated, merged: merged) : .waiting
    }

    /// A spooled chunk's rows (`[line, [identity...], [tag...], [field, value...], [channel, state...], newId]`).
    static func stepRows(_ data: String) -> [CustomerStore.ImportStepRow] {
        guard case .array(let rows)? = JSONValue.parse(Array(data.utf8)) else { return [] }
        func strings(_ v: JSONValue) -> [String] {
            guard case .array(let a) = v else { return [] }
            return a.compactMap { if case .string(let s) = $0 { s } else { nil } }
        }
        return rows.compactMap { row in
            guard case .array(let f) = row, f.count >= 6, case .string(let newId) = f[5] else { return nil }
            return CustomerStore.ImportStepRow(identities: strings(f[1]), tags: strings(f[2]), profile: strings(f[3]), consent: strings(f[4]), newId: newId)
        }
    }
}
