import GatewayCore
import GatewayCrypto
import ArgumentParser
import Foundation
import RedisClient

/// `scripts/bench cluster`: the Redis client alone, on one Redis or a cluster. Workers run, each in a
/// loop, one single-slot function call per simulated interaction (a customer's hash and timeline, in
/// the customer's hash tag: what every step of the cluster key model looks like), with pipelining
/// across workers. Prints operations per second, this process's CPU per operation, and per master
/// its operations and keys, so that the routing layer's overhead and the balance can be read.
struct RedisLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "redis-load", abstract: "Single-slot function calls against one Redis or a cluster.")

    @Option(help: "A single Redis (redis://...), or with --cluster, comma-separated seed nodes.") var redis: String
    @Flag var cluster = false
    @Option var seconds = 5.0
    @Option var workers = 64
    @Option var customers = 1_000_000
    @Option(help: "Connections per node.") var connections = 4
    @Option(help: "On a cluster: writes answered once this many replicas have them (redis.waitForReplicas).") var waitReplicas = 0
    @Option(help: "Also print how the customers' keys would spread over this many masters (even slot ranges), comma-separated.") var predict = ""

    static let library = RedisFunctionLibrary(name: "bench", sources: [
        """
        register('touch', function(keys, args)
          redis.call('HSET', keys[1], 'lastSeenAt', args[1], 'n', args[2])
          redis.call('LPUSH', keys[2], args[3])
          redis.call('LTRIM', keys[2], 0, 19)
          return 1
        end)
        """,
    ])

    func run() async throws {
        let pool = try benchPool(redis, cluster: cluster, connections: connections, commandTimeoutMs: 10_000, waitForReplicas: waitReplicas)
        defer { pool.shutdown() }
        try await pool.loadLibrary(Self.library)
        _ = try await pool.onEachMaster([["CONFIG", "RESETSTAT"]])
        let cpu0 = ProcessCPU.ticks(getpid())
        let start = DispatchTime.now().uptimeNanoseconds
        let deadline = start + UInt64(seconds * 1e9)
        let customers = self.customers
        let ops = try await withThrowingTaskGroup(of: Int.self) { group in
            for w in 0..<workers {
                group.addTask {
                    var n = 0
                    var rng = SystemRandomNumberGenerator()
                    while DispatchTime.now().uptimeNanoseconds < deadline {
                        let id = "c\(Int.random(in: 0..<customers, using: &rng))"
                        _ = try await pool.fcall(Self.library, "touch", keys: ["cust:{\(id)}", "cust:{\(id)}:timeline"], args: [String(n), String(w), "interaction \(n)"])
                        n += 1
                    }
                    return n
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let cpu1 = ProcessCPU.ticks(getpid())
        print(String(format: "RESULT ops=%d seconds=%.2f ops_per_s=%.0f client_us=%.1f", ops, elapsed, Double(ops) / elapsed, ProcessCPU.microsPerUnit(from: cpu0, to: cpu1, units: ops)))
        for (endpoint, replies) in try await pool.onEachMaster([["INFO", "commandstats"], ["DBSIZE"], ["INFO", "server"]]) {
            let stats = replies[0].string ?? ""
            let calls = stats.split(whereSeparator: \.isNewline).first { $0.hasPrefix("cmdstat_fcall:") }
                .flatMap { $0.split(separator: ",").first?.split(separator: "=").last }.flatMap { Int($0) } ?? 0
            let pid = (replies[2].string ?? "").split(whereSeparator: \.isNewline).first { $0.hasPrefix("process_id:") }.map { $0.dropFirst("process_id:".count) } ?? ""
            print("NODE endpoint=\(endpoint) ops=\(calls) keys=\(replies[1].int ?? 0) pid=\(pid)")
        }
        for masters in predict.split(separator: ",").compactMap({ Int($0) }) where masters > 0 {
            var perMaster = [Int](repeating: 0, count: masters)
            for i in 0..<customers { perMaster[HashSlot.of("cust:{c\(i)}") * masters / HashSlot.count] += 1 }
            let mean = Double(customers) / Double(masters)
            let spread = perMaster.map { abs(Double($0) - mean) / mean * 100 }.max() ?? 0
            print(String(format: "PREDICT masters=%d customers=%d max_deviation_pct=%.2f", masters, customers, spread))
        }
    }
}

/// A pool on one Redis (`redis://...`), or with `cluster`, on the cluster whose seed nodes `redis` lists
/// (comma-separated).
func benchPool(_ redis: String, cluster: Bool, connections: Int, commandTimeoutMs: Int, waitForReplicas: Int = 0) throws -> RedisPool {
    guard cluster else { return RedisPool(try RedisConfiguration(url: redis, connections: connections, commandTimeoutMs: commandTimeoutMs)) }
    return RedisPool(
        cluster: try redis.split(separator: ",").map { try RedisConfiguration(url: String($0), connections: connections, commandTimeoutMs: commandTimeoutMs) },
        waitForReplicas: waitForReplicas,
        // The gateway's partitions: what it reads and writes is where the bench looks.
        streamPartitions: Int(ProcessInfo.processInfo.environment["SCRM_REDIS_STREAM_PARTITIONS"] ?? "") ?? GatewayConfig().redis.streamPartitions)
}
