import GatewayCrypto
import Foundation
import Metrics

/// Sends each command to the master serving its key's slot, in a Redis Cluster found from seed nodes.
///
/// - The slot map is read with `CLUSTER SHARDS` before the first command, again after a `MOVED` or a
///   lost connection (at most every 200 ms, one read at a time), so a failover is followed as soon as
///   the cluster has promoted a replica.
/// - A pipeline is split by node, the parts sent at once, and the replies put back in order. Commands
///   that name no key follow the pipeline's first key; a pipeline with `MULTI` goes to one node whole.
/// - `MOVED` is followed and remembered; `ASK` is followed once with `ASKING`; `TRYAGAIN` and
///   `CLUSTERDOWN` are retried after a short wait. A command still redirected after that, like a node
///   that cannot be reached, throws `.connection`, as an unreachable single Redis does.
/// - With `readFromReplicas`, pipelines of read-only commands go to an online replica of the slot
///   (its master when it has none).
/// - With `waitForReplicas` n > 0, a pipeline that writes is answered only once `WAIT` says n of the
///   master's online replicas (fewer if it has fewer) have it, so a master killed right after loses
///   nothing that was answered. A replica that does not confirm in time fails the writes as `.connection`
///   (the caller answers 503; the platform's retry finds them stored).
final class RedisCluster: @unchecked Sendable {
    private let template: RedisConfiguration
    let seeds: [String]
    private let readFromReplicas: Bool
    private let waitForReplicas: Int
    private let replicaWaitMs: Int
    private let lock = NSLock()
    private var map = ClusterSlotMap.empty  // guarded by lock
    private var nodes: [String: RedisNode] = [:]  // guarded by lock
    private var replicaNodes: [String: RedisNode] = [:]  // guarded by lock
    private var refreshing: Task<Void, any Error>?  // guarded by lock
    private var refreshedAt: UInt64 = 0  // guarded by lock
    private var closed = false  // guarded by lock
    private static let maxRedirects = 5
    private static let refreshIntervalNs: UInt64 = 200_000_000
    private static let backgroundRefreshNs: UInt64 = 10_000_000_000

    init(seeds: [RedisConfiguration], readFromReplicas: Bool, waitForReplicas: Int, replicaWaitMs: Int) {
        precondition(!seeds.isEmpty, "a cluster needs at least one seed node")
        template = seeds[0]
        self.seeds = seeds.map(\.endpoint)
        self.readFromReplicas = readFromReplicas
        self.waitForReplicas = waitForReplicas
        self.replicaWaitMs = replicaWaitMs
    }

    deinit { shutdown() }

    func shutdown() {
        let all: [RedisNode] = lock.withLock {
            closed = true
            refreshing?.cancel()
            return Array(nodes.values) + Array(replicaNodes.values)
        }
        for node in all { node.shutdown() }
    }

    // MARK: - Commands

    func execute(_ commands: [[String]]) async throws -> [RedisValue] {
        let slots = commands.map { CommandKey.of($0).map(HashSlot.of) }
        let anchor = slots.lazy.compactMap { $0 }.first
        if commands.contains(where: { $0.first == "MULTI" }) { return try await transaction(commands, slot: anchor) }
        let readOnly = readFromReplicas && commands.allSatisfy { ReadOnlyCommand.contains($0) }
        let map = try await currentMap()
        var groups: [String: [Int]] = [:]
        for i in commands.indices { groups[try endpoint(slots[i] ?? anchor, map, replica: readOnly), default: []].append(i) }
        var results = [RedisValue](repeating: .null, count: commands.count)
        if groups.count == 1, let (endpoint, _) = groups.first {
            results = try await submit(commands, to: endpoint, replica: readOnly)
        } else {
            try await withThrowingTaskGroup(of: ([Int], [RedisValue]).self) { group in
                for (endpoint, indices) in groups {
                    group.addTask { (indices, try await self.submit(indices.map { commands[$0] }, to: endpoint, replica: readOnly)) }
                }
                for try await (indices, replies) in group { for (i, reply) in zip(indices, replies) { results[i] = reply } }
            }
        }
        // Follow redirects one command at a time, in pipeline order, so commands on one key keep their order.
        var answeredBy = [String](repeating: "", count: commands.count)
        for (endpoint, indices) in groups { for i in indices { answeredBy[i] = endpoint } }
        for attempt in 1...Self.maxRedirects + 1 {
            let pending = results.indices.compactMap { i in ClusterRedirect(results[i], answeredBy: answeredBy[i]).map { (i, $0) } }
            if pending.isEmpty { break }
            if attempt > Self.maxRedirects { throw Self.unsettled(commands[pending[0].0], pending[0].1) }
            for (i, redirect) in pending {
                let (endpoint, asking) = try await follow(redirect, slot: slots[i] ?? anchor, attempt: attempt)
                results[i] = try await submit(asking ? [["ASKING"], commands[i]] : [commands[i]], to: endpoint, replica: false).last ?? .null
                answeredBy[i] = endpoint
            }
        }
        return results
    }

    /// A command still redirected after every retry: the cluster is moving or electing. Thrown as a
    /// connection error (the caller answers 503 and retries later), never as a bad command.
    private static func unsettled(_ command: [String], _ redirect: ClusterRedirect) -> RedisError {
        RedisError(.connection, command: command.first ?? "?", message: "the cluster did not settle (\(redirect.kind) after \(maxRedirects) tries)")
    }

    /// Sends the commands to every master, as the cluster reports them now (a node just added or
    /// promoted included); used for FUNCTION LOAD, FLUSHALL, SCAN and status.
    func eachMaster(_ commands: [[String]]) async throws -> [(endpoint: String, replies: [RedisValue])] {
        try await refreshNow(force: true)
        let masters = try await currentMap().masters
        return try await withThrowingTaskGroup(of: (String, [RedisValue]).self) { group in
            for endpoint in masters { group.addTask { (endpoint, try await self.submit(commands, to: endpoint, replica: false)) } }
            var out: [(endpoint: String, replies: [RedisValue])] = []
            for try await (endpoint, replies) in group { out.append((endpoint, replies)) }
            return out.sorted { $0.endpoint < $1.endpoint }
        }
    }

    /// Sends the commands to one node by its endpoint (status pages, tests).
    func send(_ commands: [[String]], toNode endpoint: String) async throws -> [RedisValue] {
        try await submit(commands, to: endpoint, replica: false)
    }

    /// The slot map, read now.
    func topology() async throws -> ClusterSlotMap {
        try await refreshNow(force: true)
        return lock.withLock { map }
    }

    /// A pipeline with MULTI goes to one node whole. A redirect of any of its commands aborted the
    /// transaction (EXECABORT), so it is sent again whole: after MOVED to the new owner, after ASK to
    /// the target with `ASKING` first (which lasts for the whole transaction).
    private func transaction(_ commands: [[String]], slot: Int?) async throws -> [RedisValue] {
        var target: (endpoint: String, asking: Bool)?
        var replies: [RedisValue] = []
        for attempt in 0...Self.maxRedirects {
            let map = try await currentMap()
            let endpoint = try target?.endpoint ?? endpoint(slot, map, replica: false)
            let asking = target?.asking ?? false
            replies = try await submit(asking ? [["ASKING"]] + commands : commands, to: endpoint, replica: false)
            if asking { replies.removeFirst() }
            guard let redirect = replies.lazy.compactMap({ ClusterRedirect($0, answeredBy: endpoint) }).first else { break }
            if attempt == Self.maxRedirects { throw Self.unsettled(commands[0], redirect) }
            target = try await follow(redirect, slot: slot, attempt: attempt + 1)
        }
        return replies
    }

    /// Where to send a redirected command, and whether `ASKING` must go first.
    private func follow(_ redirect: ClusterRedirect, slot: Int?, attempt: Int) async throws -> (String, Bool) {
        Counter(label: "scrm_redis_redirects_total", dimensions: [("kind", redirect.kind)]).increment()
        switch redirect {
        case .moved(let slot, let endpoint):
            lock.withLock { map.move(slot: slot, to: endpoint) }
            scheduleRefresh()
            return (endpoint, false)
        case .ask(_, let endpoint):
            return (endpoint, true)
        case .tryAgain, .clusterDown:
            try await Task.sleep(nanoseconds: UInt64(attempt) * 50_000_000)
            if redirect == .clusterDown { try? await refreshNow(force: false) }
            return (try endpoint(slot, lock.withLock { map }, replica: false), false)
        }
    }

    private func submit(_ commands: [[String]], to endpoint: String, replica: Bool) async throws -> [RedisValue] {
        do {
            return try await node(endpoint, replica: replica).submit(commands)
        } catch let error as RedisError where error.kind == .connection {
            // The node may have failed over: read the map again so that the next call finds the new master.
            scheduleRefresh()
            throw RedisError(.connection, command: error.command, message: "\(endpoint): \(error.message)")
        }
    }

    private func endpoint(_ slot: Int?, _ map: ClusterSlotMap, replica: Bool) throws -> String {
        guard let slot else { return map.masters.randomElement() ?? seeds[0] }
        if replica, let endpoint = map.replicas(of: slot).randomElement() { return endpoint }
        guard let endpoint = map.master(of: slot) else {
            scheduleRefresh()
            throw RedisError(.connection, command: "CLUSTER", message: "no master serves slot \(slot)")
        }
        return endpoint
    }

    private func node(_ endpoint: String, replica: Bool) throws -> RedisNode {
        try lock.withLock {
            if closed { throw RedisError(.shutdown, command: "CLUSTER", message: "pool is shut down") }
            if replica, let node = replicaNodes[endpoint] { return node }
            if !replica, let node = nodes[endpoint] { return node }
            guard let colon = endpoint.lastIndex(of: ":"), let port = Int(endpoint[endpoint.index(after: colon)...]) else {
                throw RedisError(.server, command: "CLUSTER", message: "bad node address \(endpoint)")
            }
            var configuration = template
            configuration.host = String(endpoint[..<colon])
            configuration.port = port
            configuration.unixSocket = nil
            let acks = replica || waitForReplicas == 0 ? nil : ReplicaAcks(timeoutMs: replicaWaitMs)
            acks?.required = min(waitForReplicas, map.onlineReplicaCount(master: endpoint))
            let node = RedisNode(configuration, readOnly: replica, replicaAcks: acks)
            if replica { replicaNodes[endpoint] = node } else { nodes[endpoint] = node }
            return node
        }
    }

    // MARK: - Slot map

    /// The map in use; read first if there is none, and read again in the background every 10 s so that
    /// replicas that came online and nodes that were added are found without waiting for an error.
    private func currentMap() async throws -> ClusterSlotMap {
        let (current, age) = lock.withLock { (map, DispatchTime.now().uptimeNanoseconds - refreshedAt) }
        if !current.isEmpty {
            if age > Self.backgroundRefreshNs { scheduleRefresh() }
            return current
        }
        try await refreshNow(force: true)
        return lock.withLock { map }
    }

    /// Reads the map now (or waits for the read in progress), unless it was read under 200 ms ago and `force` is false.
    private func refreshNow(force: Bool) async throws {
        let task: Task<Void, any Error>? = lock.withLock {
            if let running = refreshing { return running }
            if !force, !map.isEmpty, DispatchTime.now().uptimeNanoseconds - refreshedAt < Self.refreshIntervalNs { return nil }
            let task = Task { try await self.readMap() }
            refreshing = task
            return task
        }
        try await task?.value
    }

    private func scheduleRefresh() {
        lock.withLock {
            if refreshing != nil || closed || DispatchTime.now().uptimeNanoseconds - refreshedAt < Self.refreshIntervalNs { return }
            refreshing = Task { try? await self.readMap() }
        }
    }

    /// Asks the known nodes, then the seeds, for `CLUSTER SHARDS` until one answers.
    private func readMap() async throws {
        defer {
            lock.withLock {
                refreshing = nil
                refreshedAt = DispatchTime.now().uptimeNanoseconds
            }
        }
        var candidates = lock.withLock { map.endpoints }
        for seed in seeds where !candidates.contains(seed) { candidates.append(seed) }
        var lastError: any Error = RedisError(.connection, command: "CLUSTER SHARDS", message: "no seed node")
        for endpoint in candidates {
            do {
                let reply = try await node(endpoint, replica: false).submit([["CLUSTER", "SHARDS"]])[0]
                if case .error(let message) = reply { throw RedisError(.server, command: "CLUSTER SHARDS", message: "\(endpoint): \(message)") }
                let fresh = try ClusterSlotMap.parse(shards: reply)
                lock.withLock {
                    map = fresh
                    for (endpoint, node) in nodes { node.replicaAcks?.required = min(waitForReplicas, fresh.onlineReplicaCount(master: endpoint)) }
                }
                return
            } catch {
                lastError = error
            }
        }
        throw lastError
    }
}

/// Commands that only read, which a replica may serve.
enum ReadOnlyCommand {
    static let names: Set<String> = [
        "GET", "MGET", "STRLEN", "EXISTS", "TYPE", "TTL", "PTTL", "HGET", "HMGET", "HGETALL", "HEXISTS", "HLEN", "HKEYS", "HVALS", "SCARD",
        "SISMEMBER", "SMISMEMBER", "SMEMBERS", "SRANDMEMBER", "ZCARD", "ZSCORE", "ZMSCORE", "ZRANGE", "ZRANGEBYSCORE", "ZREVRANGE",
        "ZREVRANGEBYSCORE", "ZRANGEBYLEX", "ZRANK", "ZREVRANK", "ZCOUNT", "ZLEXCOUNT", "LRANGE", "LLEN", "LINDEX", "XLEN", "XRANGE",
        "XREVRANGE", "FCALL_RO",
    ]

    static func contains(_ command: [String]) -> Bool { command.first.map { names.contains($0.uppercased()) } ?? false }
}
