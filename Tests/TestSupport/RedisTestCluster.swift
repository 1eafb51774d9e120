import Foundation
import RedisClient

/// A real Redis Cluster on loopback for one test: `masters` masters with `replicas` replicas each,
/// made with `redis-cli --cluster create`, and a short node timeout so that a failover takes about a
/// second. Every node has its own data directory and AOF, like `RedisTestServer`.
public final class RedisTestCluster: @unchecked Sendable {
    /// Masters first (the order `redis-cli --cluster create` was given), then replicas.
    public let servers: [RedisTestServer]

    /// Starts the nodes, creates the cluster and waits until it is healthy.
    public static func start(masters: Int = 3, replicas: Int = 1, nodeTimeoutMs: Int = 1000) async throws -> RedisTestCluster {
        let cluster = try RedisTestCluster(masters: masters, replicas: replicas, nodeTimeoutMs: nodeTimeoutMs)
        try await cluster.waitUntilHealthy()
        return cluster
    }

    private init(masters: Int, replicas: Int, nodeTimeoutMs: Int) throws {
        var servers: [RedisTestServer] = []
        for _ in 0..<(masters * (1 + replicas)) {
            servers.append(try RedisTestServer(extraArguments: Self.clusterArguments(nodeTimeoutMs: nodeTimeoutMs)))
        }
        self.servers = servers
        let status = try LocalProcess.run(
            [Self.redisCliPath(), "--cluster", "create"] + servers.map { "127.0.0.1:\($0.port)" } + ["--cluster-replicas", String(replicas), "--cluster-yes"])
        guard status == 0 else { throw NSError(domain: "RedisTestCluster", code: Int(status), userInfo: [NSLocalizedDescriptionKey: "redis-cli --cluster create failed"]) }
    }

    /// The options that make a redis-server a cluster node. The bus port is named: by default it is
    /// the port + 10,000, which can be taken or past 65,535.
    public static func clusterArguments(nodeTimeoutMs: Int, busPort: Int? = nil) throws -> [String] {
        [
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", String(try busPort ?? RedisTestServer.freePort()),
            "--cluster-node-timeout", String(nodeTimeoutMs), "--appendfsync", "everysec",
        ]
    }

    public var seeds: [RedisConfiguration] { servers.prefix(2).map(\.configuration) }

    /// A pool on the cluster, as the gateway makes it from `redis.cluster`.
    public func pool(readFromReplicas: Bool = false, waitForReplicas: Int = 0, replicaWaitMs: Int = 200) -> RedisPool {
        RedisPool(cluster: seeds, readFromReplicas: readFromReplicas, waitForReplicas: waitForReplicas, replicaWaitMs: replicaWaitMs)
    }

    /// Waits until every running node says `cluster_state:ok` and knows every node, and every replica's
    /// link to its master is up.
    public func waitUntilHealthy(timeoutSeconds: Double = 30) async throws {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while Date() < deadline {
            var healthy = true
            for server in servers where server.isRunning {
                let info = await clusterInfo(server)
                if !info.contains("cluster_state:ok") || !info.contains("cluster_known_nodes:\(servers.count)") { healthy = false }
                let replication = await nodeInfo(server, ["INFO", "replication"])
                if replication.contains("role:slave") && !replication.contains("master_link_status:up") { healthy = false }
            }
            if healthy { return }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        throw NSError(domain: "RedisTestCluster", code: 1, userInfo: [NSLocalizedDescriptionKey: "the cluster did not become healthy"])
    }

    /// The server listening on `endpoint` (`127.0.0.1:port`).
    public func server(_ endpoint: String) -> RedisTestServer? { servers.first { "127.0.0.1:\($0.port)" == endpoint } }

    /// `CLUSTER INFO` of one node ("" when it does not answer).
    public func clusterInfo(_ server: RedisTestServer) async -> String { await nodeInfo(server, ["CLUSTER", "INFO"]) }

    private func nodeInfo(_ server: RedisTestServer, _ command: [String]) async -> String {
        let pool = RedisPool(RedisConfiguration(host: "127.0.0.1", port: server.port, connections: 1, connectTimeoutMs: 300, commandTimeoutMs: 1000))
        defer { pool.shutdown() }
        return (try? await pool.send(command).string) ?? ""
    }

    static func redisCliPath() -> String {
        for candidate in ["/usr/bin/redis-cli", "/usr/local/bin/redis-cli"] where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        fatalError("redis-cli not found: run scripts/test, which installs it")
    }
}
