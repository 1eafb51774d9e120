import Foundation
import GatewayCore
import RedisClient
import Store
import TestSupport

/// The Redis a crash suite's `scrm-gateway` processes share: in scripts/test's cluster stage the
/// cluster (emptied first), else a redis-server of the suite's own.
final class CrashRedis {
    /// The suite's own redis-server (nil on the cluster).
    let server: RedisTestServer?
    /// The suite's own view of it (the gateways' pool settings: partitions and replica waits).
    let pool: RedisPool
    /// Where the suite writes its configs.
    let directory: URL
    /// What a gateway config's `redis:` map names it by (`url: ...` or `cluster: [...]`).
    let locator: String

    init() throws {
        if let nodes = TestCluster.nodes {
            try TestCluster.flush(nodes)
            server = nil
            let masters = Array(nodes.prefix(3))
            let defaults = GatewayConfig().redis
            pool = RedisPool(
                cluster: masters.map { RedisConfiguration(host: "127.0.0.1", port: $0, connections: 2, connectTimeoutMs: 500, commandTimeoutMs: 2000) },
                waitForReplicas: defaults.waitForReplicas, replicaWaitMs: defaults.replicaWaitMs, streamPartitions: defaults.streamPartitions)
            locator = "cluster: [" + masters.map { "\"redis://127.0.0.1:\($0)\"" }.joined(separator: ", ") + "]"
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("scrm-crash-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } else {
            let server = try RedisTestServer()
            self.server = server
            pool = RedisPool(server.configuration)
            locator = "url: \"\(server.url)\""
            directory = server.directory
        }
    }

    deinit {
        pool.shutdown()
        if server == nil { try? FileManager.default.removeItem(at: directory) }
    }

    /// The members of one index (named as on a single Redis: `customers`, `tag:imported`) over every shard.
    func indexMembers(_ single: String) async throws -> [String] {
        let colon = single.firstIndex(of: ":")
        let base = colon.map { String(single[..<$0]) } ?? single
        return try await indexMembersOnEveryShard(pool, base, colon.map { String(single[single.index(after: $0)...]) })
    }

    /// The keys matching a pattern, on every master.
    func keys(_ pattern: String) async throws -> [String] {
        try await pool.onEachMaster([["KEYS", pattern]]).flatMap { $0.1[0].strings }.sorted()
    }
}

/// The members of one index (a set or sorted set) over every shard, sorted.
func indexMembersOnEveryShard(_ redis: RedisPool, _ base: String, _ name: String? = nil) async throws -> [String] {
    let keys = redis.isCluster
        ? try await redis.onEachMaster([["KEYS", name.map { "\(base):{*}:\($0)" } ?? "\(base):{*}"]]).flatMap { $0.1[0].strings }
        : [IndexShard.single.key(base, name)]
    var members = [String]()
    for key in keys {
        let type = try await redis.send("TYPE", key).string
        members += try await redis.send(type == "zset" ? ["ZRANGE", key, "0", "-1"] : ["SMEMBERS", key]).strings
    }
    return members.sorted()
}
