import Foundation
import GatewayCore
import RedisClient

/// What a CRM with a discovered address and asynchronous bulk imports (Eloqua) keeps in Redis, shared
/// by every process: the discovery (base URL, field ids) and each bulk import's progress.
extension CRMOutbox {
    // MARK: discovery

    /// The cached discovery (empty when none or expired).
    public func discovery() async throws -> [String: String] {
        try await redis.send("HGETALL", Keys.crmDiscovery(adapter: adapter)).dictionary
    }

    public func saveDiscovery(_ fields: [String: String], ttlSeconds: Int) async throws {
        let key = Keys.crmDiscovery(adapter: adapter)
        _ = try await redis.pipelineChecked([["DEL", key], ["HSET", key] + fields.flatMap { [$0.key, $0.value] }, ["EXPIRE", key, String(ttlSeconds)]])
    }

    /// Forgets the discovery (the CRM refused our credentials at that address): the next call
    /// discovers again.
    public func forgetDiscovery() async throws {
        _ = try await redis.send("DEL", Keys.crmDiscovery(adapter: adapter))
    }

    // MARK: leases

    /// Keeps a batch that is still being worked on (a bulk import's sync) leased until `untilMs`, so
    /// no other process takes its customers meanwhile. Only customers still on the wire are touched,
    /// and a lease is never shortened.
    public func renewLease(_ customers: [String], untilMs: Int64) async throws {
        for start in stride(from: 0, to: customers.count, by: 1000) {
            let chunk = customers[start..<min(start + 1000, customers.count)]
            _ = try await redis.send(["ZADD", Keys.crmInFlight(adapter: adapter), "XX", "GT"] + chunk.flatMap { [String(untilMs), $0] })
        }
    }

    // MARK: bulk imports

    /// One bulk import, as `GET /api/v1/crm` shows it.
    public struct BulkImport: Codable, Sendable, Equatable {
        /// The CRM's sync (`/syncs/2941`).
        public var sync: String
        /// uploading, pending, active, success, warning, error, or abandoned (not finished in time).
        public var status: String
        public var records: Int
        public var startedAt: Int64
        public var updatedAt: Int64
        public var finishedAt: Int64?
        /// Times the sync's status was read.
        public var polls: Int
        /// From the sync's logs once finished: contacts created, updated, and rows rejected.
        public var created: Int?
        public var updated: Int?
        public var rejected: Int?

        public init(sync: String, status: String, records: Int, startedAt: Int64) {
            self.sync = sync
            self.status = status
            self.records = records
            self.startedAt = startedAt
            updatedAt = startedAt
            polls = 0
        }
    }

    /// How many imports are kept; older finished ones are dropped.
    static let bulkKept = 20

    public func noteBulk(_ item: BulkImport) async throws {
        let key = Keys.crmBulk(adapter: adapter)
        let json = String(decoding: try JSONEncoder().encode(item), as: UTF8.self)
        // (HKEYS, not HLEN: the hash stays small, and config/redis-acl.txt grants the commands in use.)
        let count = try await redis.pipelineChecked([["HSET", key, item.sync, json], ["HKEYS", key]]).last?.strings.count ?? 0
        guard count > Self.bulkKept * 2 else { return }
        let finished = try await bulkImports().filter { $0.finishedAt != nil }.dropFirst(Self.bulkKept)
        if !finished.isEmpty { _ = try await redis.send(["HDEL", key] + finished.map(\.sync)) }
    }

    /// The adapter's bulk imports, newest first.
    public func bulkImports() async throws -> [BulkImport] {
        let all = try await redis.send("HGETALL", Keys.crmBulk(adapter: adapter)).dictionary
        let decoder = JSONDecoder()
        return all.values.compactMap { try? decoder.decode(BulkImport.self, from: Data($0.utf8)) }.sorted { $0.startedAt > $1.startedAt }
    }
}
