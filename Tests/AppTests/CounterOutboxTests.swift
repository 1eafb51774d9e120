import Foundation
import GatewayCore
@testable import Store
import XCTest

/// A cluster's message changes count into their slot's outbox (`Keys.counterOutbox`); the flush adds
/// each take to the campaign's and journey's stats exactly once, also when a flush stopped halfway
/// and counts kept arriving meanwhile. The functions are the same on a single Redis.
final class CounterOutboxTests: XCTestCase {
    func test_aFlushThatStoppedHalfway_isFinished_andEveryCountLandsOnce() async throws {
        let h = try Harness()
        let store = MessageStore(redis: h.redis)
        let shard = IndexShard(slot: 4242)
        let outbox = Keys.counterOutbox(shard)
        let stats = Keys.campaignStats("c1"), journey = Keys.journeyStats("j1"), rate = Keys.campaignSendRate("c1")
        _ = try await h.redis.pipelineChecked([
            ["HINCRBY", outbox, "\(stats)\tsent\t", "3"], ["HINCRBY", outbox, "\(stats)\topen\t", "-3"],
            ["HINCRBY", outbox, "\(journey)\ts:remind:sent\t", "1"], ["HINCRBY", outbox, "\(rate)\t1790000000\t120", "3"],
        ])
        // A flush takes the outbox, adds it to the campaign's stats, and stops.
        let take = try await h.redis.fcall(
            StoreFunctions.library, "counters_take", keys: [outbox, Keys.counterOutboxTaking(shard), Keys.counterOutboxSequence(shard)], args: []
        ).strings
        let first = try XCTUnwrap(take.first.flatMap { Int64($0) })
        XCTAssertGreaterThanOrEqual(first, Int64(Date().timeIntervalSince1970 * 1000) - 60_000, "take numbers start at the time in ms")
        let applied = try await h.redis.fcall(
            StoreFunctions.library, "counters_apply", keys: [stats, Keys.counterApplied(stats)], args: ["", shard.tag ?? "single", String(first), "2", "sent", "3", "open", "-3"])
        XCTAssertEqual(applied.int, 1)
        // Counts keep arriving in the emptied outbox.
        _ = try await h.redis.send("HINCRBY", outbox, "\(stats)\tsent\t", "2")

        try await store.flushCounters([shard])  // finishes the stopped take: the campaign's part is not added again
        let afterResume = try await h.redis.send("HGETALL", stats).dictionary
        XCTAssertEqual(afterResume, ["sent": "3", "open": "-3"])
        try await store.flushCounters([shard])  // the counts that arrived meanwhile
        let second = try await h.redis.send("HGETALL", stats).dictionary
        XCTAssertEqual(second, ["sent": "5", "open": "-3"])
        try await store.flushCounters([shard])  // nothing left: nothing changes
        let third = try await h.redis.send("HGETALL", stats).dictionary
        XCTAssertEqual(third, ["sent": "5", "open": "-3"])

        let steps = try await h.redis.send("HGETALL", journey).dictionary
        XCTAssertEqual(steps, ["s:remind:sent": "1"])
        let perSecond = try await h.redis.send("HGET", rate, "1790000000").string
        XCTAssertEqual(perSecond, "3")
        let ttl = try await h.redis.send("TTL", rate).int ?? -1
        XCTAssertTrue((1...120).contains(ttl), "the per-second rate expires: \(ttl)")
        let left = try await h.redis.send("EXISTS", outbox, Keys.counterOutboxTaking(shard)).int
        XCTAssertEqual(left, 0, "the outbox and its take are gone")
        // What was applied is one number per source slot (the second take's), not a mark per take.
        let marks = try await h.redis.send("HGETALL", Keys.counterApplied(stats)).dictionary
        XCTAssertEqual(Array(marks.keys), [shard.tag ?? "single"])
        XCTAssertGreaterThan(Int64(marks.values.first ?? "") ?? 0, first)
        // A late flusher still holding the first take (it read it before the resume finished) adds nothing.
        let late = try await h.redis.fcall(
            StoreFunctions.library, "counters_apply", keys: [stats, Keys.counterApplied(stats)], args: ["", shard.tag ?? "single", String(first), "1", "sent", "3"])
        XCTAssertEqual(late.int, 0)
        let final = try await h.redis.send("HGETALL", stats).dictionary
        XCTAssertEqual(final, ["sent": "5", "open": "-3"])

        // Two slots' takes for the same counter key go in one call, each added once.
        let other = IndexShard(slot: 777)
        _ = try await h.redis.pipelineChecked([
            ["HINCRBY", outbox, "\(stats)\tsent\t", "1"], ["HINCRBY", Keys.counterOutbox(other), "\(stats)\tsent\t", "10"],
        ])
        try await store.flushCounters([shard, other])
        let both = try await h.redis.send("HGET", stats, "sent").string
        XCTAssertEqual(both, "16")
        let sources = try await h.redis.send("HLEN", Keys.counterApplied(stats)).int
        XCTAssertEqual(sources, 2, "one number per source slot")
    }
}
