import GatewayCrypto
import Logging

/// A pool of pipelining Redis connections, each on its own thread: to one Redis, or to every node of a
/// Redis Cluster (`init(cluster:)`, which routes each command to the node serving its key's slot).
///
/// ```swift
/// let redis = RedisPool(RedisConfiguration(port: 6379))
/// try await redis.send("SET", "k", "v")
/// let replies = try await redis.pipeline([["INCR", "a"], ["GET", "a"]])
/// ```
public final class RedisPool: Sendable {
    private enum Route {
        case single(RedisNode)
        case cluster(RedisCluster)
    }

    private let route: Route
    /// How many partitions the busy streams are split into (`StreamPartitions`): 1 on a single Redis.
    public let streamPartitions: Int

    public init(_ configuration: RedisConfiguration) {
        route = .single(RedisNode(configuration))
        streamPartitions = 1
    }

    /// A Redis Cluster found from its seed nodes (any of its nodes will do). The seeds' credentials,
    /// connection count and timeouts are used for every node; each node gets its own connections.
    /// With `readFromReplicas`, pipelines of read-only commands may be served (a little stale) by replicas.
    /// With `waitForReplicas` n > 0, writes are answered once n of their master's online replicas have
    /// them (Redis `WAIT`, at most `replicaWaitMs`; see `RedisCluster`). `streamPartitions` is what
    /// the stores split their busy streams into (`redis.streamPartitions`; the same on every process).
    public init(
        cluster seeds: [RedisConfiguration], readFromReplicas: Bool = false, waitForReplicas: Int = 0, replicaWaitMs: Int = 200, streamPartitions: Int = 1
    ) {
        route = .cluster(RedisCluster(seeds: seeds, readFromReplicas: readFromReplicas, waitForReplicas: waitForReplicas, replicaWaitMs: replicaWaitMs))
        self.streamPartitions = streamPartitions
    }

    deinit { shutdown() }

    /// Where it connects: the one Redis, or the cluster's seed nodes (for logs and status pages).
    public var endpoints: [String] {
        switch route {
        case .single(let node): [node.endpoint]
        case .cluster(let cluster): cluster.seeds
        }
    }

    public var isCluster: Bool {
        if case .cluster = route { return true }
        return false
    }

    /// Runs one command; an error reply is thrown as `RedisError(.server)`.
    @discardableResult
    public func send(_ args: String...) async throws -> RedisValue { try await send(args) }

    @discardableResult
    public func send(_ args: [String]) async throws -> RedisValue {
        let reply = try await submit([args])[0]
        if case .error(let message) = reply { throw RedisError.reply(command: args[0], message: message) }
        return reply
    }

    /// Runs commands back to back on one connection in one round trip (on a cluster: one per node the
    /// commands' keys live on, in parallel). Error replies are returned in place (as `.error`), so a
    /// caller sees which command failed.
    public func pipeline(_ commands: [[String]]) async throws -> [RedisValue] {
        if commands.isEmpty { return [] }
        return try await submit(commands)
    }

    /// Like `pipeline`, but throws the first error reply, naming its command.
    public func pipelineChecked(_ commands: [[String]]) async throws -> [RedisValue] {
        let replies = try await pipeline(commands)
        for (i, reply) in replies.enumerated() {
            if case .error(let message) = reply { throw RedisError.reply(command: commands[i][0], message: message) }
        }
        return replies
    }

    /// Runs a Lua script by SHA, loading it with EVAL when Redis answers NOSCRIPT.
    public func eval(_ script: RedisScript, keys: [String], args: [String]) async throws -> RedisValue {
        let tail = [String(keys.count)] + keys + args
        do {
            return try await send(["EVALSHA", script.sha1] + tail)
        } catch let error as RedisError where error.isNoScript {
            return try await send(["EVAL", script.source] + tail)
        } catch let error as RedisError where error.kind == .server {
            throw RedisError(.server, command: "EVALSHA \(script.name)", message: error.message)
        }
    }

    public func shutdown() {
        switch route {
        case .single(let node): node.shutdown()
        case .cluster(let cluster): cluster.shutdown()
        }
    }

    /// Runs the commands on every master of a cluster, or on the one Redis: for commands that apply to
    /// the whole keyspace (FUNCTION LOAD, FLUSHALL, SCAN, DBSIZE, INFO). Replies by node endpoint.
    public func onEachMaster(_ commands: [[String]]) async throws -> [(endpoint: String, replies: [RedisValue])] {
        switch route {
        case .single(let node): [(node.endpoint, try await node.submit(commands))]
        case .cluster(let cluster): try await cluster.eachMaster(commands)
        }
    }

    /// Runs the commands on one node, named by its endpoint as `topology()` names it.
    public func onNode(_ endpoint: String, _ commands: [[String]]) async throws -> [RedisValue] {
        switch route {
        case .single(let node): try await node.submit(commands)
        case .cluster(let cluster): try await cluster.send(commands, toNode: endpoint)
        }
    }

    /// The cluster's slot map as the cluster reports it now; nil for a single Redis.
    public func topology() async throws -> ClusterSlotMap? {
        switch route {
        case .single: nil
        case .cluster(let cluster): try await cluster.topology()
        }
    }

    /// On a cluster, every key in the hash slot of `key` (`CLUSTER GETKEYSINSLOT` on the master serving
    /// it, at most `limit`): what a hash tag's owner left under names nobody indexed. Nil on a single Redis.
    public func keysInSlot(of key: String, limit: Int = 100_000) async throws -> [String]? {
        guard case .cluster(let cluster) = route else { return nil }
        let slot = HashSlot.of(key)
        guard let endpoint = try await cluster.topology().master(of: slot) else {
            throw RedisError(.connection, command: "CLUSTER", message: "no master serves slot \(slot)")
        }
        return try await cluster.send([["CLUSTER", "GETKEYSINSLOT", String(slot), String(limit)]], toNode: endpoint)[0].strings
    }

    private func submit(_ commands: [[String]]) async throws -> [RedisValue] {
        switch route {
        case .single(let node): try await node.submit(commands)
        case .cluster(let cluster): try await cluster.execute(commands)
        }
    }
}
