import GatewayCrypto
import Foundation
import RedisClient
import TestSupport
import XCTest

/// The cluster-aware `RedisPool` against a real Redis Cluster on loopback.
final class RedisClusterTests: XCTestCase {
    func test_commandsAndPipelines_reachTheMasterServingEachKeysSlot() async throws {
        let cluster = try await RedisTestCluster.start(masters: 3, replicas: 0)
        let redis = cluster.pool()
        defer { redis.shutdown() }
        let keys = (0..<300).map { "k:\($0)" }
        let sets = try await redis.pipeline(keys.map { ["SET", $0, "v\($0)"] })
        XCTAssertEqual(sets, Array(repeating: .status("OK"), count: keys.count), "a pipeline over every master")
        let gets = try await redis.pipeline(keys.map { ["GET", $0] })
        XCTAssertEqual(gets.map(\.string), keys.map { "v\($0)" }, "replies come back in pipeline order")
        let one = try await redis.send("GET", "k:7").string
        XCTAssertEqual(one, "vk:7")

        let map = try await XCTUnwrapAsync(try await redis.topology())
        XCTAssertEqual(map.shards.count, 3)
        XCTAssertEqual(map.shards.map(\.slotCount).reduce(0, +), HashSlot.count)
        var perMaster: [String: Int] = [:]
        for key in keys {
            let owner = try XCTUnwrap(map.master(of: HashSlot.of(key)))
            perMaster[owner, default: 0] += 1
            // Asked directly, the owner answers (any other master would answer MOVED).
            let direct = try await redis.onNode(owner, [["GET", key]])[0]
            XCTAssertEqual(direct.string, "v\(key)")
        }
        let sizes = try await redis.onEachMaster([["DBSIZE"]])
        XCTAssertEqual(sizes.count, 3)
        for (endpoint, replies) in sizes {
            XCTAssertEqual(replies[0].int, perMaster[endpoint], endpoint)
            XCTAssertGreaterThan(replies[0].int ?? 0, 50, "keys spread over the masters")
        }
    }

    func test_functionLibrary_isLoadedOnEveryMaster_andFcallRunsWhereItsKeysLive() async throws {
        let cluster = try await RedisTestCluster.start(masters: 3, replicas: 0)
        let redis = cluster.pool()
        defer { redis.shutdown() }
        let library = RedisFunctionLibrary(name: "clustertest", sources: ["register('bump', function(keys, args) return redis.call('INCRBY', keys[1], args[1]) end)"])
        try await redis.loadLibrary(library)
        for (endpoint, replies) in try await redis.onEachMaster([["FUNCTION", "LIST", "LIBRARYNAME", "clustertest_*"]]) {
            XCTAssertEqual(replies[0].array?.count, 1, "\(endpoint) holds the library")
        }
        for i in 0..<60 {
            let got = try await redis.fcall(library, "bump", keys: ["n:\(i)"], args: [String(i)]).int
            XCTAssertEqual(got, i)
        }
        // A master that lost its functions (a new or rebuilt node) gets the library again on first use.
        let victim = try await XCTUnwrapAsync(try await redis.topology()?.master(of: HashSlot.of("n:1")))
        _ = try await redis.onNode(victim, [["FUNCTION", "FLUSH"]])
        let again = try await redis.fcall(library, "bump", keys: ["n:1"], args: ["10"]).int
        XCTAssertEqual(again, 11)
    }

    func test_aMasterAddedWithoutTheLibrary_getsItOnTheFirstCallThatReachesIt() async throws {
        let cluster = try await RedisTestCluster.start(masters: 3, replicas: 0)
        let redis = cluster.pool()
        defer { redis.shutdown() }
        let library = RedisFunctionLibrary(name: "addednode", sources: ["register('echo', function(keys, args) redis.call('SET', keys[1], args[1]) return args[1] end)"])
        try await redis.loadLibrary(library)
        let key = "added:{x}"
        let warm = try await redis.fcall(library, "echo", keys: [key], args: ["before"]).string
        XCTAssertEqual(warm, "before")

        // A fourth master joins empty (no functions), and the key's slot moves to it.
        let bus = try RedisTestServer.freePort()
        let added = try RedisTestServer(extraArguments: try RedisTestCluster.clusterArguments(nodeTimeoutMs: 1000, busPort: bus))
        let map = try await XCTUnwrapAsync(try await redis.topology())
        let slot = HashSlot.of(key)
        let source = try XCTUnwrap(map.master(of: slot))
        let sourceId = try XCTUnwrap(map.shards.first { $0.master.endpoint == source }?.master.id)
        _ = try await redis.onNode(source, [["CLUSTER", "MEET", "127.0.0.1", String(added.port), String(bus)]])
        let direct = RedisPool(added.configuration)
        defer { direct.shutdown() }
        let addedId = try await direct.send("CLUSTER", "MYID").string ?? ""
        // Until every master knows the new node and it knows every master (the handshake is gossiped).
        let masterIds = map.shards.map(\.master.id)
        for _ in 0..<200 {
            let seenByNew = try await direct.send("CLUSTER", "NODES").string ?? ""
            var known = masterIds.allSatisfy { seenByNew.contains($0) }
            for node in map.masters where known { known = (try await redis.onNode(node, [["CLUSTER", "NODES"]])[0].string ?? "").contains(addedId) }
            if known { break }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        let listed = try await direct.send("FUNCTION", "LIST").array
        XCTAssertEqual(listed, [], "the new node has no functions")
        _ = try await direct.send("CLUSTER", "SETSLOT", String(slot), "IMPORTING", sourceId)
        _ = try await redis.onNode(source, [["CLUSTER", "SETSLOT", String(slot), "MIGRATING", addedId]])
        _ = try await redis.onNode(source, [["MIGRATE", "127.0.0.1", String(added.port), "", "0", "5000", "KEYS", key]])
        _ = try await direct.send("CLUSTER", "SETSLOT", String(slot), "NODE", addedId)
        for node in map.masters { _ = try await redis.onNode(node, [["CLUSTER", "SETSLOT", String(slot), "NODE", addedId]]) }

        // A node serves nothing until its cluster state is ok (Redis waits 2 s after a master starts).
        for _ in 0..<100 where !(try await direct.send("CLUSTER", "INFO").string ?? "").contains("cluster_state:ok") {
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        let after = try await redis.fcall(library, "echo", keys: [key], args: ["after"]).string
        XCTAssertEqual(after, "after", "MOVED to the new master, the library loaded there, the call made")
        let onNew = try await direct.send("GET", key).string
        XCTAssertEqual(onNew, "after")
        let owner = try await redis.topology()?.master(of: slot)
        XCTAssertEqual(owner, "127.0.0.1:\(added.port)")
    }

    func test_transaction_runsWholeOnTheNodeOfItsHashTag() async throws {
        let cluster = try await RedisTestCluster.start(masters: 3, replicas: 0)
        let redis = cluster.pool()
        defer { redis.shutdown() }
        let replies = try await redis.pipeline([["MULTI"], ["SET", "a:{c1}", "1"], ["INCR", "b:{c1}"], ["EXEC"]])
        XCTAssertEqual(replies.last?.array, [.status("OK"), .integer(1)])
        let crossSlot = try await redis.pipeline([["SET", "x:{c1}", "1"], ["SET", "y:{c2}", "2"], ["MGET", "x:{c1}", "y:{c2}"]])
        XCTAssertEqual(crossSlot[0], .status("OK"))
        XCTAssertEqual(crossSlot[1], .status("OK"))
        guard case .error(let message) = crossSlot[2] else { return XCTFail("a command over two slots must fail, got \(crossSlot[2])") }
        XCTAssertTrue(message.hasPrefix("CROSSSLOT"), message)
    }

    func test_slotMovedBehindThePoolsBack_isFollowedByMovedAndAsk() async throws {
        let cluster = try await RedisTestCluster.start(masters: 3, replicas: 0)
        let redis = cluster.pool()
        defer { redis.shutdown() }
        let key = "moving:{m}"
        let other = "staying:{m}:2"
        let slot = HashSlot.of(key)
        XCTAssertEqual(HashSlot.of(other), slot)
        try await redis.send("SET", key, "before")
        try await redis.send("SET", other, "stays")
        let map = try await XCTUnwrapAsync(try await redis.topology())
        let source = try XCTUnwrap(map.master(of: slot))
        let target = try XCTUnwrap(map.masters.first { $0 != source })
        let sourceId = try XCTUnwrap(map.shards.first { $0.master.endpoint == source }?.master.id)
        let targetId = try XCTUnwrap(map.shards.first { $0.master.endpoint == target }?.master.id)
        let targetPort = try XCTUnwrap(target.split(separator: ":").last)

        // Mid-migration: the slot is migrating on the source and importing on the target, and one of its
        // two keys has moved. The pool's map still says the source.
        _ = try await redis.onNode(target, [["CLUSTER", "SETSLOT", String(slot), "IMPORTING", sourceId]])
        _ = try await redis.onNode(source, [["CLUSTER", "SETSLOT", String(slot), "MIGRATING", targetId]])
        let migrated = try await redis.onNode(source, [["MIGRATE", "127.0.0.1", String(targetPort), "", "0", "5000", "KEYS", key]])
        XCTAssertEqual(migrated[0], .status("OK"))
        let moved = try await redis.send("GET", key).string
        XCTAssertEqual(moved, "before", "ASK: read on the target with ASKING")
        let stayed = try await redis.send("GET", other).string
        XCTAssertEqual(stayed, "stays", "a key not moved yet is still served by the source")
        do {
            // Its two keys are on two nodes now: a command over both cannot run until the move ends.
            _ = try await redis.send("MGET", key, other)
            XCTFail("MGET over a half-moved slot answered")
        } catch let error as RedisError {
            XCTAssertEqual(error.kind, .connection, "retried, then reported as unavailable, not as a bad command: \(error)")
            XCTAssertTrue(error.message.contains("tryagain"), error.message)
        }
        try await redis.send("SET", "new:{m}", "fresh")
        let onTarget = try await redis.onNode(target, [["ASKING"], ["GET", "new:{m}"]])
        XCTAssertEqual(onTarget[1].string, "fresh", "a new key in a migrating slot is written on the target")

        // The migration ends: the slot belongs to the target. The pool follows MOVED.
        _ = try await redis.onNode(source, [["MIGRATE", "127.0.0.1", String(targetPort), "", "0", "5000", "KEYS", other]])
        for node in map.masters { _ = try await redis.onNode(node, [["CLUSTER", "SETSLOT", String(slot), "NODE", targetId]]) }
        let replies = try await redis.pipeline([["GET", key], ["GET", other], ["SET", key, "after"], ["GET", key]])
        XCTAssertEqual(replies.map(\.string), ["before", "stays", "OK", "after"])
        let owner = try await redis.topology()?.master(of: slot)
        XCTAssertEqual(owner, target)
    }

    func test_masterKilled_replicaPromoted_thePoolFollowsAndKeepsWhatWasReplicated() async throws {
        let cluster = try await RedisTestCluster.start(masters: 3, replicas: 1)
        let redis = cluster.pool()
        defer { redis.shutdown() }
        let keys = (0..<200).map { "f:\($0)" }
        _ = try await redis.pipelineChecked(keys.map { ["SET", $0, $0] })
        for (endpoint, replies) in try await redis.onEachMaster([["WAIT", "1", "1000"]]) { XCTAssertEqual(replies[0].int, 1, "\(endpoint) replicated") }

        let map = try await XCTUnwrapAsync(try await redis.topology())
        let victimEndpoint = try XCTUnwrap(map.master(of: HashSlot.of("f:0")))
        let replica = try XCTUnwrap(map.shards.first { $0.master.endpoint == victimEndpoint }?.replicas.first?.endpoint)
        try XCTUnwrap(cluster.server(victimEndpoint)).crash()

        // While the cluster notices (node timeout 1 s) calls for the dead master's slots fail as
        // connection errors; once the replica is promoted they succeed on it.
        var failures = 0
        let start = Date()
        var recovered = false
        while Date().timeIntervalSince(start) < 20 {
            do {
                try await redis.send("SET", "f:0", "after failover")
                recovered = true
                break
            } catch let error as RedisError {
                XCTAssertEqual(error.kind, .connection, "\(error)")
                failures += 1
                try await Task.sleep(nanoseconds: 100_000_000)
            }
        }
        XCTAssertTrue(recovered, "the pool did not follow the failover")
        XCTAssertGreaterThan(failures, 0)
        let owner = try await redis.topology()?.master(of: HashSlot.of("f:0"))
        XCTAssertEqual(owner, replica)
        let values = try await redis.pipeline(keys.map { ["GET", $0] })
        XCTAssertEqual(values.dropFirst().map(\.string), keys.dropFirst().map { $0 }, "every replicated key survived")
        XCTAssertEqual(values.first?.string, "after failover")
    }

    func test_waitForReplicas_answersAWriteOnlyOnceAReplicaHasIt() async throws {
        let cluster = try await RedisTestCluster.start(masters: 3, replicas: 1)
        let redis = cluster.pool(waitForReplicas: 1, replicaWaitMs: 300)
        let plain = cluster.pool()
        defer {
            redis.shutdown()
            plain.shutdown()
        }
        let key = "w:{acks}"
        let map = try await waitForOnlineReplicas(redis)
        let shard = try XCTUnwrap(map.shards.first { $0.master.endpoint == map.master(of: HashSlot.of(key)) })
        let replica = try XCTUnwrap(cluster.server(try XCTUnwrap(shard.replicas.first?.endpoint)))
        try await redis.send("SET", key, "1")
        let waits = try await commandCalls(plain, shard.master.endpoint, "wait")
        XCTAssertGreaterThan(waits, 0, "the write was followed by WAIT")

        // A replica that cannot confirm (frozen): the write reaches the master but is not answered as done.
        replica.pause()
        defer { replica.resume() }
        do {
            try await redis.send("SET", key, "2")
            XCTFail("a write no replica confirmed was answered")
        } catch let error as RedisError {
            XCTAssertEqual(error.kind, .connection, "\(error)")
            XCTAssertTrue(error.message.contains("0 of 1 replicas"), error.message)
        }
        let onMaster = try await plain.send("GET", key).string
        XCTAssertEqual(onMaster, "2", "the master has it; a retry finds it")
        // Reads are not held up, and without waitForReplicas writes are answered as the master takes them.
        let read = try await redis.send("GET", key).string
        XCTAssertEqual(read, "2")
        try await plain.send("SET", key, "3")
    }

    /// The slot map once every replica is online (the cluster hears of a replica's offset a moment after it starts).
    private func waitForOnlineReplicas(_ redis: RedisPool) async throws -> ClusterSlotMap {
        var map = try await XCTUnwrapAsync(try await redis.topology())
        for _ in 0..<100 where map.shards.contains(where: { $0.replicas.contains { $0.health != "online" } }) {
            try await Task.sleep(nanoseconds: 100_000_000)
            map = try await XCTUnwrapAsync(try await redis.topology())
        }
        return map
    }

    private func commandCalls(_ redis: RedisPool, _ node: String, _ command: String) async throws -> Int {
        let info = try await redis.onNode(node, [["INFO", "commandstats"]])[0].string ?? ""
        let line = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("cmdstat_\(command):calls=") } ?? ""
        return Int(line.dropFirst("cmdstat_\(command):calls=".count).prefix { $0.isNumber }) ?? 0
    }

    func test_readFromReplicas_sendsReadOnlyPipelinesToAReplica() async throws {
        let cluster = try await RedisTestCluster.start(masters: 3, replicas: 1)
        let writer = cluster.pool()
        let reader = cluster.pool(readFromReplicas: true)
        defer {
            writer.shutdown()
            reader.shutdown()
        }
        try await writer.send("SET", "r:{x}", "1")
        _ = try await writer.pipeline([["WAIT", "1", "1000"]])
        let slot = HashSlot.of("r:{x}")
        // A replica counts as online once the cluster has heard of its replication offset.
        let map = try await waitForOnlineReplicas(reader)
        let replica = try XCTUnwrap(map.shards.first { $0.master.endpoint == map.master(of: slot) }?.replicas.first { $0.health == "online" }?.endpoint)
        let before = try await commandCalls(writer, replica, "get")
        for _ in 0..<5 {
            let value = try await reader.send("GET", "r:{x}").string
            XCTAssertEqual(value, "1")
        }
        let after = try await commandCalls(writer, replica, "get")
        XCTAssertEqual(after - before, 5, "the replica served the reads")
        try await reader.send("INCR", "r:{x}")  // a write still goes to the master
        let value = try await writer.send("GET", "r:{x}").string
        XCTAssertEqual(value, "2")
    }

}

func XCTUnwrapAsync<T>(_ value: @autoclosure () async throws -> T?, file: StaticString = #filePath, line: UInt = #line) async throws -> T {
    let v = try await value()
    return try XCTUnwrap(v, file: file, line: line)
}
