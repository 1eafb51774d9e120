import Foundation
import Metrics

/// A dedicated thread that owns one `RedisConnection`. Requests queue up while a batch is in flight and
/// then go out together as one pipeline, so concurrent callers share round trips. Blocking hiredis calls
/// happen only here, never on an event loop.
final class RedisWorker: @unchecked Sendable {
    struct Request {
        let commands: [[String]]
        let continuation: CheckedContinuation<[RedisValue], any Error>
    }

    private let connection: RedisConnection
    private let condition = NSCondition()
    private var queue: [Request] = []  // guarded by condition
    private var running = true  // guarded by condition
    private var thread: Thread?
    private var lastConnectFailure: ContinuousClock.Instant?  // worker thread only
    private let latency: Timer
    private let errors: Counter
    private let maxBatch = 512
    /// A cluster master's: batches that write end with `WAIT` for this many replicas.
    private let replicaAcks: ReplicaAcks?
    private let replicaShortfalls: Counter

    /// `node` names the server in the metrics (`node` dimension): one series per cluster node.
    init(connection: RedisConnection, name: String, node: String, replicaAcks: ReplicaAcks? = nil) {
        self.connection = connection
        self.replicaAcks = replicaAcks
        replicaShortfalls = Counter(label: "scrm_redis_replica_wait_shortfalls_total", dimensions: [("node", node)])
        latency = Timer(label: "scrm_redis_roundtrip_seconds", dimensions: [("node", node)], preferredDisplayUnit: .seconds)
        errors = Counter(label: "scrm_redis_errors_total", dimensions: [("node", node)])
        // The thread holds the worker until `run` returns (the pool can be released right after
        // shutdown while the thread is still closing the connection); `run` then drops `thread`, so
        // nothing is kept alive afterwards. An unowned capture here crashed under AddressSanitizer.
        let thread = Thread { [self] in self.run() }
        thread.name = name
        self.thread = thread
        thread.start()
    }

    /// Number of requests waiting; used to pick the least busy worker.
    var depth: Int {
        condition.lock()
        defer { condition.unlock() }
        return queue.count
    }

    func submit(_ commands: [[String]]) async throws -> [RedisValue] {
        try await withCheckedThrowingContinuation { continuation in
            condition.lock()
            guard running else {
                condition.unlock()
                continuation.resume(throwing: RedisError(.shutdown, command: commands.first?.first ?? "?", message: "pool is shut down"))
                return
            }
            queue.append(Request(commands: commands, continuation: continuation))
            condition.signal()
            condition.unlock()
        }
    }

    func shutdown() {
        condition.lock()
        running = false
        condition.broadcast()
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while queue.isEmpty && running { condition.wait() }
            if queue.isEmpty && !running {
                condition.unlock()
                break
            }
            let batch = Array(queue.prefix(maxBatch))
            queue.removeFirst(batch.count)
            condition.unlock()
            execute(batch)
        }
        connection.close()
        condition.lock()
        thread = nil
        condition.unlock()
    }

    private func execute(_ batch: [Request]) {
        let start = DispatchTime.now().uptimeNanoseconds
        // On a cluster master, a batch that writes ends with WAIT: its writes are on a replica before any
        // of it is answered, so a failover (kill -9 of the master) loses nothing that was answered.
        let replicas = replicaAcks?.required ?? 0
        let waits = replicas > 0 && batch.contains { $0.commands.contains(where: ReplicaAcks.writes) }
        do {
            try ensureConnected()
            for request in batch { for command in request.commands { try connection.append(command) } }
            if waits { try connection.append(["WAIT", String(replicas), String(replicaAcks?.timeoutMs ?? 0)]) }
        } catch {
            errors.increment()
            for request in batch { request.continuation.resume(throwing: error) }
            return
        }
        var replies = [[RedisValue]]()
        replies.reserveCapacity(batch.count)
        var failed: (any Error)?
        for (i, request) in batch.enumerated() {
            do {
                var out = [RedisValue]()
                out.reserveCapacity(request.commands.count)
                for command in request.commands { out.append(try connection.readReply(command: command.first ?? "?")) }
                if !waits {
                    request.continuation.resume(returning: out)
                } else {
                    replies.append(out)
                }
            } catch {
                // The connection is gone: every later reply in this batch is lost with it.
                errors.increment()
                failed = error
                for later in batch[i...] { later.continuation.resume(throwing: error) }
                break
            }
        }
        if waits {
            var shortfall: (any Error)? = failed
            if failed == nil {
                do {
                    let acked = try connection.readReply(command: "WAIT").int ?? 0
                    if acked < replicas {
                        replicaShortfalls.increment()
                        shortfall = RedisError(.connection, command: "WAIT", message: "written, but \(acked) of \(replicas) replicas confirmed within \(replicaAcks?.timeoutMs ?? 0) ms")
                    }
                } catch {
                    errors.increment()
                    shortfall = error
                }
            }
            // Replies read before the connection broke: their requests were resumed above with the error.
            for (request, out) in zip(batch, replies) {
                if let shortfall, request.commands.contains(where: ReplicaAcks.writes) {
                    request.continuation.resume(throwing: shortfall)
                } else {
                    request.continuation.resume(returning: out)
                }
            }
        }
        latency.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - start))
    }

    /// Reconnects a broken connection, but at most every 100 ms so an outage fails fast instead of
    /// stacking up connect attempts.
    private func ensureConnected() throws {
        if connection.isConnected { return }
        if let last = lastConnectFailure, ContinuousClock.now - last < .milliseconds(100) {
            throw RedisError(.connection, command: "CONNECT", message: "redis unreachable (retrying)")
        }
        do {
            try connection.connect()
            lastConnectFailure = nil
        } catch {
            lastConnectFailure = .now
            throw error
        }
    }
}
