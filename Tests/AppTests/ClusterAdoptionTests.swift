import Foundation
import GatewayCore
import RedisClient
@testable import Store
import TestSupport
import XCTest

/// A deployment moved from a single Redis onto a cluster: its keys carried over with
/// `redis-cli --cluster import` (names kept), then a gateway on the cluster adopts them at start
/// (`CustomerStore.prepareIndexes`): audiences find every customer by tag, attribute and score in
/// their shards, the single Redis's index keys are gone, and what waited on the old streams is
/// still read by the consumer groups where they were.
final class ClusterAdoptionTests: XCTestCase {
    func test_customersCarriedOverFromASingleRedis_areIndexedIntoShards_andTheOldStreamsAreStillRead() async throws {
        let config = try ConfigLoader(environment: [:]).load(yaml: Harness.yaml)
        let now: Int64 = 1_790_000_000_000
        let single = try RedisTestServer()
        let before = RedisPool(single.configuration)
        defer { before.shutdown() }
        let n = 300
        let rows = (0..<n).map { i in
            CustomerStore.ImportRow(
                identities: [Identity(kind: .email, value: "moved\(i)@example.com")], tags: i % 2 == 0 ? ["expo"] : [],
                profile: ["city": i % 3 == 0 ? "Shanghai" : "Beijing", "spend": String(i)])
        }
        let singleStore = CustomerStore(redis: before, config: config)
        _ = try await singleStore.prepareIndexes()
        _ = try await singleStore.importBatch(rows, nowMs: now)
        let ids = try await before.send("ZRANGE", Keys.customers, "0", "-1").strings
        XCTAssertEqual(ids.count, n)
        // Scored customers: the first ten (their hash is where the score lives; the index follows it).
        for id in ids.prefix(10) { _ = try await before.send("HSET", Keys.customer(id), "score", "50", "scoreAt", String(now)) }
        // An interaction no consumer has read yet, and a queued send nobody has taken.
        _ = try await before.send("XGROUP", "CREATE", Keys.inboundStream, "adoption-test", "0", "MKSTREAM")
        _ = try await before.send("XADD", Keys.inboundStream, "*", "type", "message.text", "customer", ids[0], "payload", "{}", "at", String(now))
        let queue = Keys.outboundStream(channel: "sms", lane: .bulk)
        _ = try await before.send("XADD", queue, "*", "id", "01KMOVEDMESSAGE0000000000")

        let cluster = try await RedisTestCluster.start(masters: 3, replicas: 0)
        let status = try LocalProcess.run([
            "/usr/bin/redis-cli", "--cluster", "import", "127.0.0.1:\(cluster.servers[0].port)", "--cluster-from", "127.0.0.1:\(single.port)", "--cluster-copy",
        ])
        XCTAssertEqual(status, 0, "redis-cli --cluster import")
        let after = RedisPool(cluster: cluster.seeds, streamPartitions: 6)
        defer { after.shutdown() }
        let store = CustomerStore(redis: after, config: config)
        let adopted = try await store.prepareIndexes()
        XCTAssertGreaterThanOrEqual(adopted, n)

        // Every customer in its own shard's indexes, found as on the single Redis.
        let listed = try await indexMembersOnEveryShard(after, "customers")
        XCTAssertEqual(Set(listed), Set(ids))
        for member in listed.prefix(20) {
            let inOwnShard = try await after.send("ZSCORE", IndexShard(customer: member).key(single: Keys.customers), member).string
            XCTAssertNotNil(inOwnShard, "\(member) in the shard of its own slot")
        }
        let audiences = AudienceStore(redis: after, attributes: config.customers.attributes)
        for (expression, expected) in [("expo", n / 2), ("profile.city=shanghai", n / 3), ("profile.spend>=150", n / 2), ("score>=40", 10), ("expo & profile.spend<100", 50)] {
            let preview = try await audiences.preview(TagExpression.parse(expression), sample: 5, nowMs: now)
            XCTAssertEqual(preview.count, expected, expression)
        }
        // The single Redis's index keys are gone; the customers' own keys are all there.
        var unsharded = [String]()
        for pattern in ["customers", "tag:*", "fidx:*", "pidx:*", "lastseen", "scores", "scores:meta"] {
            for (_, replies) in try await after.onEachMaster([["KEYS", pattern]]) { unsharded += replies[0].strings.filter { !$0.contains("{") } }
        }
        XCTAssertEqual(unsharded, [])
        for id in ids.prefix(5) {
            let city = try await after.send("HGET", Keys.customer(id), "profile.city").string
            XCTAssertNotNil(city)
        }
        let again = try await store.prepareIndexes()
        XCTAssertEqual(again, 0, "adopted once")

        // The old streams are read where their groups were, besides the partitions new entries go to.
        let reader = StreamGroupReader(redis: after, streams: after.streams.all(Keys.inboundStream), group: "adoption-test")
        await reader.createGroup()
        let read = try await reader.read(count: 10, reclaim: false)
        XCTAssertEqual(read.map { $0.fields["customer"] }, [ids[0]])
        XCTAssertEqual(read.first?.partition, 6, "after the 6 partitions")
        XCTAssertEqual(read.first.map { StreamPartitions.entryId($0.id, partition: $0.partition) }, read.first?.qualifiedId)
        let carried = await MessageStore(redis: after).carriedOver(queue)
        XCTAssertEqual(carried, queue)
        let empty = await MessageStore(redis: after).carriedOver(Keys.outboundStream(channel: "email", lane: .bulk))
        XCTAssertNil(empty, "a queue that was never used is not read")
    }
}
