import Foundation
import GatewayCore
import HummingbirdTesting
import Outbound
import RedisClient
import Store
import XCTest

/// A queued campaign recipient is a reference (message id, campaign, variant, customer, channel) on
/// its channel's stream, made a rendered message only when a sender takes it, on a real Redis.
extension CampaignTests {
    func test_aQueuedRecipient_isAReference_madeAMessageOnceWhenSent() async throws {
        let rig = try await rig()
        rig.h.now = 1_790_042_400_000  // 10:00 in Shanghai
        let first = try await rig.customer(nil, phone: "+8613800000401", tags: ["ref"], profile: ["nickname": "Ann"])
        let renamed = try await rig.customer(nil, phone: "+8613800000402", tags: ["ref"], profile: ["nickname": "Bo"])
        let gone = try await rig.customer(nil, phone: "+8613800000403", tags: ["ref"], profile: ["nickname": "Cy"])
        // The queue's partitions (one on a single Redis).
        let partitions = rig.h.redis.streams.all(Keys.outboundStream(channel: "sms", lane: .bulk))

        try await rig.h.test { client in
            let created = try await client.send(
                .post, "/api/v1/campaigns", json: Self.campaignJSON(audience: "ref", channels: #"[{"channel":"sms","text":"Hi {{profile.nickname}}"}]"#))
            let id = try XCTUnwrap(created.json["id"] as? String, created.text)
            _ = try await client.send(.post, "/api/v1/campaigns/\(id)/start", json: "{}")
            let planner = try rig.runPlannerOnly()
            var entries = [RedisValue]()
            for _ in 0..<200 where entries.count < 3 {
                entries = []
                for stream in partitions { entries += try await rig.h.redis.send("XRANGE", stream, "-", "+").array ?? [] }
                try await Task.sleep(for: .milliseconds(20))
            }
            planner.cancel()
            // Each entry names its recipient and nothing else: no message exists before a sender takes it.
            XCTAssertEqual(entries.count, 3)
            var fields = [String: [String: String]]()  // customer -> entry fields
            for e in entries {
                let f = e.array?[1].dictionary ?? [:]
                fields[f["u"] ?? ""] = f
                XCTAssertEqual(Set(f.keys), ["id", "c", "v", "u", "ch", "t"])
                XCTAssertEqual(f["c"], id)
                XCTAssertEqual(f["ch"], "sms")
                XCTAssertLessThanOrEqual(f.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }, 150)
                let exists = try await rig.h.redis.send("EXISTS", Keys.message(f["id"] ?? "")).int
                XCTAssertEqual(exists, 0)
            }
            XCTAssertEqual(Set(fields.keys), [first, renamed, gone])

            // Before sending: one recipient renames, one is merged away, and the snapshot scan hands
            // the first one and the merged-away one out twice (SSCAN may return a member more than once).
            _ = try await rig.h.redis.send("HSET", Keys.customer(renamed), "profile.nickname", "Bea")
            _ = try await rig.h.redis.send("HSET", Keys.customer(gone), "mergedInto", first)
            // The refused (merged-away) one twice as well: its refusal is counted once.
            for twice in [first, gone] {
                let again = try XCTUnwrap(fields[twice])
                let stream = rig.h.redis.streams.outbound(channel: "sms", lane: .bulk, message: again["id"]!)
                _ = try await rig.h.redis.send(["XADD", stream, "*"] + ["id", "c", "v", "u", "ch", "t"].flatMap { [$0, again[$0]!] })
                for metric in ["planned", "queued", "open"] {  // counted as the planner counts a reference
                    _ = try await rig.h.redis.send("HINCRBY", Keys.campaignStats(id), metric, "1")
                    _ = try await rig.h.redis.send("HINCRBY", Keys.campaignStats(id), "v:default:\(metric)", "1")
                }
            }

            let senders = try rig.runSenders()
            defer { senders.cancel() }
            let done = try await Self.waitForState(client, id, "completed")
            let progress = try XCTUnwrap(done["progress"] as? [String: Any])
            XCTAssertEqual(progress["planned"] as? Int, 3, "\(progress)")
            XCTAssertEqual(progress["sent"] as? Int, 2)
            XCTAssertEqual(progress["skipped"] as? Int, 1)
            XCTAssertEqual(progress["open"] as? Int, 0)
            let report = try await client.get("/api/v1/campaigns/\(id)/report").json
            XCTAssertEqual(report["skipped"] as? [String: Int], ["customer_gone": 1], "\(report)")
            let channels = try XCTUnwrap(report["channels"] as? [String: [String: Int]])
            XCTAssertEqual(channels["sms"]?["planned"], 2, "counted on the channel when made: \(report)")
            XCTAssertEqual(channels["sms"]?["open"], 0)
            let left = try await rig.h.redis.pipelineChecked(partitions.map { ["XLEN", $0] }).reduce(0) { $0 + ($1.int ?? 0) }
            XCTAssertEqual(left, 0, "every entry acknowledged and deleted")

            // The message made from the reference: rendered at send time, indexed under its customer.
            let mid = try XCTUnwrap(fields[first]?["id"])
            let m = try await client.get("/api/v1/messages/\(mid)").json
            XCTAssertEqual(m["state"] as? String, "sent", "\(m)")
            XCTAssertEqual(m["customerId"] as? String, first)
            let indexed = try await rig.h.redis.send("ZRANGE", Keys.customerMessages(first), "0", "-1").strings
            XCTAssertEqual(indexed, [mid])
            // A refusal made no message: its small record (reason and entry, nothing about the person)
            // is not one, and the refused recipient shows in the report's skips.
            let refusedId = try XCTUnwrap(fields[gone]?["id"])
            let refused = try await client.get("/api/v1/messages/\(refusedId)")
            XCTAssertEqual(refused.status, .notFound, refused.text)
            let record = try await rig.h.redis.send("HGETALL", Keys.message(refusedId)).dictionary
            XCTAssertEqual(Set(record.keys), ["state", "refused", "entry"])
            XCTAssertEqual(record["refused"], "customer_gone")
        }
        let sms = rig.fakes.ledger.deliveries("twilio")
        XCTAssertEqual(sms.map(\.to).sorted(), ["+8613800000401", "+8613800000402"], "one message each, none to the merged-away customer")
        XCTAssertEqual(Set(sms.map { $0.body["Body"] ?? "" }), ["Hi Ann", "Hi Bea"], "rendered with the profile as it was when sent")
    }
}
