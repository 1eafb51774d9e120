import App
import Foundation
import GatewayCore
import Hummingbird
import HummingbirdTesting
import Store
import XCTest
@testable import AdminAPI

/// The dashboard's hourly numbers: counted in memory where things happen, added to Redis by each
/// process, read back summed, per hour.
final class ActivityStatsTests: XCTestCase {
    func test_callbacksAndFollowers_perHour_summedOverProcesses() async throws {
        let h = try Harness()
        let adapters = try loadAdapters(config: h.config, environment: h.adapterEnvironment)
        let clock: GatewayClock = { [h] in h.now }
        let outbound = makeOutbound(config: h.config, redis: h.redis, adapters: adapters, clock: clock)
        let app = buildApplication(config: h.config, redis: h.redis, adapters: adapters, outbound: outbound, clock: clock)
        try await app.test(.router) { client in
            let sub = SampleCallbacks.event(to: "gh", from: "oSTAT", event: "subscribe", eventKey: "qrscene_expo2026", createTime: h.nowSeconds)
            _ = try await client.callback(try h.builder("demo").post(xml: sub, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false))
            let text = SampleCallbacks.text(to: "gh", from: "oSTAT", content: "hello", msgId: "9001", createTime: h.nowSeconds)
            _ = try await client.callback(try h.builder("demo").post(xml: text, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false))
            let before = try await client.get("/api/v1/stats/activity?hours=2")
            XCTAssertEqual(before.value?.lookup("inbound"), .array([]), "nothing is in Redis before a flush")
            try await outbound.activity.flush()

            // A second process counted an unfollow in the same hour, and a send.
            let other = ActivityStats(redis: h.redis)
            other.inbound(account: "demo", type: "event.unsubscribe", atMs: h.now)
            other.outbound(channel: "sms", result: "sent", atMs: h.now)
            other.outbound(channel: "sms", result: "sent", atMs: h.now - 3_600_000)
            try await other.flush()

            let stats = try await client.get("/api/v1/stats/activity?hours=2")
            XCTAssertEqual(stats.status, .ok, stats.text)
            XCTAssertEqual(stats.value?.lookup("hours")?.arrayValue?.count, 2)
            let inbound = stats.value?.lookup("inbound")?.arrayValue ?? []
            XCTAssertEqual(inbound.first { $0.lookup("type")?.scalarText == "event.subscribe" }?.lookup("counts"), .array([.int(0), .int(1)]))
            XCTAssertEqual(inbound.first { $0.lookup("type")?.scalarText == "message.text" }?.lookup("counts"), .array([.int(0), .int(1)]))
            XCTAssertEqual(stats.value?.lookup("followers.0.gained"), .array([.int(0), .int(1)]))
            XCTAssertEqual(stats.value?.lookup("followers.0.lost"), .array([.int(0), .int(1)]), "both processes' counts, summed")
            XCTAssertEqual(stats.value?.lookup("outbound.0.sent"), .array([.int(1), .int(1)]), "each count in its own hour")
            let ttl = try await h.redis.send("PTTL", Keys.activityHour(h.now / 3_600_000)).int ?? 0
            XCTAssertGreaterThan(ttl, 7 * 24 * 3_600_000, "hours are kept for eight days")
            let bad = try await client.get("/api/v1/stats/activity?hours=0")
            XCTAssertEqual(bad.status, .badRequest)
        }
    }
}
