/// The connections to one Redis server (a single Redis, or one node of a cluster): a few pipelining
/// workers, each on its own thread. A request goes to the least busy one.
final class RedisNode: Sendable {
    /// `host:port` (or the socket path): how the node is named in logs, metrics and `MOVED` replies.
    let endpoint: String
    private let workers: [RedisWorker]
    /// A cluster master's replica confirmations (nil for a single Redis and for replicas).
    let replicaAcks: ReplicaAcks?

    init(_ configuration: RedisConfiguration, readOnly: Bool = false, replicaAcks: ReplicaAcks? = nil) {
        endpoint = configuration.endpoint
        self.replicaAcks = replicaAcks
        workers = (0..<max(1, configuration.connections)).map { i in
            RedisWorker(
                connection: RedisConnection(configuration, readOnly: readOnly), name: "redis-\(configuration.endpoint)-\(i)", node: configuration.endpoint,
                replicaAcks: replicaAcks)
        }
    }

    deinit { shutdown() }

    /// Runs the commands back to back on one connection; error replies are returned in place.
    func submit(_ commands: [[String]]) async throws -> [RedisValue] { try await worker().submit(commands) }

    func shutdown() { for w in workers { w.shutdown() } }

    private func worker() -> RedisWorker {
        // Least queued first; ties go to the first, which keeps batches large under light load.
        var best = workers[0]
        var bestDepth = best.depth
        if bestDepth == 0 { return best }
        for w in workers.dropFirst() {
            let d = w.depth
            if d < bestDepth {
                best = w
                bestDepth = d
                if d == 0 { break }
            }
        }
        return best
    }
}
