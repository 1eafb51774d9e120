import App
import Campaigns
import Foundation
import GatewayCore
import HummingbirdTesting
import RedisClient
import Store
import XCTest

/// Conversions: a campaign's goal events attributed to its recipients and its hold-out within the
/// window, counted once, and the report's lift, on a real Redis.
extension CampaignTests {
    func test_goalEvents_insideTheWindowConvert_onceEach_andTheHoldoutIsCounted() async throws {
        let rig = try await rig()
        var created = [String]()
        for i in 0..<40 { created.append(try await rig.customer("o-conv-\(i)", tags: ["vip"], profile: ["nickname": "N\(i)"])) }
        let ids = created
        let senders = try rig.runSenders()
        defer { senders.cancel() }
        let worker = ConversionWorker(redis: rig.h.redis)
        let conversions = Task { await worker.run() }
        defer { conversions.cancel() }
        let sentAt = rig.h.now
        try await rig.h.test { client in
            let created = try await client.send(
                .post, "/api/v1/campaigns",
                json: Self.campaignJSON(
                    audience: "vip", channels: Self.wechatThenSMS, extra: #","holdoutPercent":40,"goal":{"event":"web.register","withinHours":72}"#))
            let id = try XCTUnwrap(created.json["id"] as? String, created.text)
            _ = try await client.send(.post, "/api/v1/campaigns/\(id)/start", json: "{}")
            _ = try await Self.waitForState(client, id, "completed")

            // Who got the message and who was held out.
            var reached = [String]()
            var heldOut = [String]()
            for c in ids {
                let entry = try await rig.h.redis.send("HGET", Keys.customerCampaigns(c), id).string ?? ""
                if entry.hasSuffix("|holdout") { heldOut.append(c) } else if !entry.isEmpty { reached.append(c) }
            }
            XCTAssertEqual(reached.count + heldOut.count, 40)
            XCTAssertGreaterThan(heldOut.count, 5)
            XCTAssertGreaterThan(reached.count, 5)
            guard reached.count > 5, heldOut.count > 5 else { return }  // the rest indexes into both

            func register(_ customer: String, type: String = "web.register") async throws {
                let at = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(rig.h.now) / 1000))
                let r = try await client.send(.post, "/api/v1/events", json: #"{"events":[{"type":"\#(type)","customer":"\#(customer)","at":"\#(at)"}]}"#)
                XCTAssertEqual(r.status, .ok, r.text)
            }
            rig.h.now = sentAt + 3_600_000
            try await register(reached[0])
            try await register(reached[0])  // a second registration converts nothing more
            try await register(reached[1])
            try await register(reached[2], type: "web.visit")  // not the goal
            try await register(heldOut[0])
            rig.h.now = sentAt + 100 * 3_600_000
            try await register(reached[3])  // 100 h after the send: outside the 72 h window
            try await register(heldOut[1])

            // On a cluster the customers' events are in different partitions of stream:inbound, read in no
            // set order: wait for the hold-out's conversion and the recipients' both.
            var report = [String: Any]()
            let deadline = Date().addingTimeInterval(10)
            func converted(_ report: [String: Any]) -> (holdout: Int?, recipients: Int) {
                let section = report["conversions"] as? [String: Any]
                let rows = section?["variants"] as? [[String: Any]] ?? []
                return ((section?["holdout"] as? [String: Any])?["converted"] as? Int, rows.compactMap { $0["converted"] as? Int }.reduce(0, +))
            }
            repeat {
                try await Task.sleep(for: .milliseconds(50))
                report = try await client.get("/api/v1/campaigns/\(id)/report").json
            } while (converted(report).holdout != 1 || converted(report).recipients < 2) && Date() < deadline
            let section = try XCTUnwrap(report["conversions"] as? [String: Any])
            let holdout = try XCTUnwrap(section["holdout"] as? [String: Any])
            XCTAssertEqual(holdout["size"] as? Int, heldOut.count)
            XCTAssertEqual(holdout["converted"] as? Int, 1, "the hold-out member inside the window")
            let rows = try XCTUnwrap(section["variants"] as? [[String: Any]])
            XCTAssertEqual(rows.compactMap { $0["converted"] as? Int }.reduce(0, +), 2, "two recipients inside the window, once each")
            XCTAssertEqual(rows.compactMap { $0["sent"] as? Int }.reduce(0, +), reached.count)
            let withLift = try XCTUnwrap(rows.first { ($0["converted"] as? Int ?? 0) > 0 })
            let lift = try XCTUnwrap(withLift["liftVsHoldout"] as? [String: Any])
            XCTAssertEqual((lift["ci95"] as? [Double])?.count, 2)
            XCTAssertEqual(section["verdict"] as? String, "one variant: see its lift against the hold-out")
            let stats = try await rig.h.redis.send("HGET", Keys.campaignStats(id), "converted").string
            XCTAssertEqual(stats, "2")
        }
    }
}
