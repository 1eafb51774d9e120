import GatewayCrypto
import Foundation
import RedisClient

/// The Redis servers the gateway uses, node by node: for `/readyz`, `GET /api/v1/redis`,
/// `scrmctl redis status` and the console's system page.
public struct RedisNodes: Sendable {
    let redis: RedisPool

    public init(redis: RedisPool) { self.redis = redis }

    /// One Redis server as the gateway sees it.
    public struct Node: Sendable, Encodable, Equatable {
        /// `host:port`.
        public let endpoint: String
        /// `standalone`, `master` or `replica`.
        public let role: String
        /// A replica's master.
        public let master: String?
        /// `up` (answered), `down` (unreachable), or the cluster's word for it (`fail`, `loading`).
        public let state: String
        /// Hash slots a master serves.
        public let slots: Int?
        public let keys: Int?
        public let usedMemoryBytes: Int?
        /// The round trip of this status read, in microseconds.
        public let latencyMicros: Int?
    }

    public struct Report: Sendable, Encodable {
        /// `single` or `cluster`.
        public let mode: String
        /// Slots served by a master (16,384 on a healthy cluster).
        public let slotsCovered: Int?
        /// How far the fullest and emptiest master are from the mean key count, in percent (0 = even).
        public let keyImbalancePercent: Double?
        public let nodes: [Node]
    }

    /// Every node, masters first in slot order, each asked for its key count and memory.
    public func report() async throws -> Report {
        guard let map = try await redis.topology() else {
            let node = await probe(redis.endpoints[0], role: "standalone", master: nil, slots: nil, clusterState: nil)
            return Report(mode: "single", slotsCovered: nil, keyImbalancePercent: nil, nodes: [node])
        }
        var nodes: [Node] = []
        for shard in map.shards {
            nodes.append(await probe(shard.master.endpoint, role: "master", master: nil, slots: shard.slotCount, clusterState: shard.master.health))
        }
        for shard in map.shards {
            for replica in shard.replicas {
                nodes.append(await probe(replica.endpoint, role: "replica", master: shard.master.endpoint, slots: nil, clusterState: replica.health))
            }
        }
        let masterKeys = nodes.filter { $0.role == "master" }.compactMap(\.keys)
        var imbalance: Double?
        if masterKeys.count > 1, let low = masterKeys.min(), let high = masterKeys.max() {
            let mean = Double(masterKeys.reduce(0, +)) / Double(masterKeys.count)
            imbalance = mean == 0 ? 0 : (max(Double(high) - mean, mean - Double(low)) / mean * 1000).rounded() / 10
        }
        return Report(mode: "cluster", slotsCovered: map.shards.map(\.slotCount).reduce(0, +), keyImbalancePercent: imbalance, nodes: nodes)
    }

    /// Whether every master answers PING: `(ready, per master up|down)`, masters in slot order.
    public func readiness() async throws -> (ready: Bool, masters: [Bool]) {
        guard let map = try await redis.topology() else {
            try await redis.send("PING")
            return (true, [true])
        }
        var up: [Bool] = []
        for endpoint in map.masters { up.append((try? await redis.onNode(endpoint, [["PING"]]).first) == .status("PONG")) }
        return (!up.contains(false) && map.shards.map(\.slotCount).reduce(0, +) == HashSlot.count, up)
    }

    private func probe(_ endpoint: String, role: String, master: String?, slots: Int?, clusterState: String?) async -> Node {
        let start = DispatchTime.now().uptimeNanoseconds
        let replies = try? await redis.onNode(endpoint, [["DBSIZE"], ["INFO", "memory"]])
        let micros = Int((DispatchTime.now().uptimeNanoseconds - start) / 1000)
        guard let replies, let keys = replies[0].int else {
            return Node(endpoint: endpoint, role: role, master: master, state: "down", slots: slots, keys: nil, usedMemoryBytes: nil, latencyMicros: nil)
        }
        let memory = replies[1].string?.split(whereSeparator: \.isNewline).first { $0.hasPrefix("used_memory:") }.flatMap { Int($0.dropFirst("used_memory:".count)) }
        let state = clusterState.map { $0 == "online" ? "up" : $0 } ?? "up"
        return Node(endpoint: endpoint, role: role, master: master, state: state, slots: slots, keys: keys, usedMemoryBytes: memory, latencyMicros: micros)
    }
}
