import Foundation
import GatewayCore
import RedisClient
import Synchronization

/// One consumer of a consumer group on a stream and its partitions (`StreamPartitions`; the group is
/// created on each at `start`; from "0", history is read once): reads batches from every partition,
/// hands each entry to a handler, acknowledges it after the handler returns, and takes over entries
/// another consumer left pending for a minute (a stopped process). A handler that throws leaves its
/// entry pending, to be read again. The handler gets the entry's id unique over the partitions
/// (`StreamPartitions.entryId`). A stream carried over from a single Redis is read too, after the
/// partitions, while it holds entries at start (`RedisPool.carriedOver`).
public final class StreamGroupReader: Sendable {
    let redis: RedisPool
    /// The partitions, in order, then the carried-over stream once `createGroup` found one.
    private let reading = Mutex<[String]>([])
    var partitions: [String] { reading.withLock { $0 } }
    let group: String
    let consumer: String
    /// Where a new group starts: "0" (the whole history) or "$" (what comes after).
    let start: String

    /// `streams`: a stream's partitions (`redis.streams.all(...)`), or one unpartitioned stream.
    public init(redis: RedisPool, streams: [String], group: String, from start: String = "0", consumer: String? = nil) {
        precondition(!streams.isEmpty)
        self.redis = redis
        reading.withLock { $0 = streams }
        self.group = group
        self.start = start
        self.consumer = consumer ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())"
    }

    /// One entry read: its partition, its id there, its fields.
    public struct Entry: Sendable {
        public let partition: Int
        public let id: String
        public let fields: [String: String]
        /// The id unique over the partitions.
        public var qualifiedId: String { StreamPartitions.entryId(id, partition: partition) }
    }

    /// Creates the group on every partition at `start` (an existing group is left as it is), and adds
    /// a carried-over stream to those read.
    public func createGroup() async {
        let streams = partitions
        if streams.count > 1, let legacy = await redis.carriedOver(StreamPartitions.base(of: streams[0])), !streams.contains(legacy) {
            reading.withLock { $0.append(legacy) }
        }
        _ = try? await redis.pipeline(partitions.map { ["XGROUP", "CREATE", $0, group, start, "MKSTREAM"] })
    }

    /// New entries for this consumer (up to `count`, shared over the partitions, read in one pipeline),
    /// and with `reclaim` also up to `count` entries per partition another consumer has left pending for
    /// a minute (now this consumer's).
    public func read(count: Int, reclaim: Bool) async throws -> [Entry] {
        let partitions = self.partitions
        let each = String((count + partitions.count - 1) / partitions.count)
        var commands = partitions.map { ["XREADGROUP", "GROUP", group, consumer, "COUNT", each, "STREAMS", $0, ">"] }
        // Reclaims take up to `count` from each partition: a stopped consumer's entries may all be in one.
        if reclaim { commands += partitions.map { ["XAUTOCLAIM", $0, group, consumer, "60000", "0-0", "COUNT", String(count)] } }
        let replies = try await redis.pipelineChecked(commands)
        var out = [Entry]()
        for (i, reply) in replies.enumerated() {
            let p = i % partitions.count
            let raw = i < partitions.count ? reply.array?.first?.array?.last?.array ?? [] : (reply.array.map { $0.count >= 2 ? $0[1].array ?? [] : [] } ?? [])
            for e in raw {
                guard let parts = e.array, parts.count == 2, let id = parts[0].string else { continue }
                out.append(Entry(partition: p, id: id, fields: parts[1].dictionary))
            }
        }
        return out
    }

    /// Acknowledges entries (handled: not read again).
    public func ack(_ entries: [Entry]) async throws {
        let partitions = self.partitions
        var ids = [Int: [String]]()
        for e in entries { ids[e.partition, default: []].append(e.id) }
        guard !ids.isEmpty else { return }
        _ = try await redis.pipelineChecked(ids.sorted { $0.key < $1.key }.map { ["XACK", partitions[$0.key], group] + $0.value })
    }

    /// Runs until cancelled; `beforeBatch` runs before each read (e.g. reloading rules).
    public func run(beforeBatch: @Sendable () -> Void = {}, _ handle: @Sendable (_ id: String, _ fields: [String: String]) async throws -> Void) async {
        await createGroup()
        var lastReclaim = ContinuousClock.now - .seconds(60)
        while !Task.isCancelled {
            beforeBatch()
            do {
                let reclaim = ContinuousClock.now - lastReclaim > .seconds(30)
                if reclaim { lastReclaim = ContinuousClock.now }
                let entries = try await read(count: 200, reclaim: reclaim)
                if entries.isEmpty {
                    try await Task.sleep(for: .milliseconds(100))
                    continue
                }
                for e in entries {
                    try await handle(e.qualifiedId, e.fields)
                    try await ack([e])
                }
            } catch is CancellationError {
                return
            } catch {
                try? await Task.sleep(for: .milliseconds(500))  // Redis away: the entries stay pending
                await createGroup()  // a partition whose group a failover or a flush lost (NOGROUP) gets it back
            }
        }
    }
}
