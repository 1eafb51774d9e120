import Foundation
import GatewayCore
import HummingbirdTesting
import Outbound
import RedisClient
import Store
import XCTest

/// The batch send path (`OutboundEngine.processBatch`): a campaign's messages through an adapter
/// without a rate limit are read, claimed and completed a batch at a time, on a real Redis and the
/// Twilio fake, with the send-time rules (address opt-outs, frequency caps) held per message.
final class BatchSendTests: XCTestCase {
    /// The shipped adapters, with twilio-sms's rate limit taken out (as `scripts/bench campaign` does).
    static func unthrottledAdapters() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("batch-\(UUID().uuidString)")
        return try GatewayProcess.adapters(in: dir, edits: ["twilio-sms.yaml": ("rate_limit:\n  per_second: 1\n  burst: 1\n  scope: sender\n", "")]).path
    }

    func test_aCampaign_isSentInBatches_onceEach_withOptOutsAndCapsHeldPerMessage() async throws {
        let adapters = try Self.unthrottledAdapters()
        let rig = try await CampaignTests.makeRig { config in
            config.outbound.adaptersDir = adapters
            config.outbound.concurrency = 64
            config.contactRules = ContactRules(caps: [ContactRules.Cap(channel: nil, max: 1, windowHours: 24)], timezone: "Asia/Shanghai")
        }
        rig.h.now = 1_790_042_400_000  // 10:00 in Shanghai
        var phones = [String: String]()  // customer -> phone
        for i in 0..<150 {
            let phone = String(format: "+86139%08d", i)
            phones[try await rig.customer(nil, phone: phone, tags: ["batch"], profile: ["nickname": "Fan \(i)"])] = phone
        }
        let ids = phones.keys.sorted()
        // The address replied STOP after planning read the customer: the claim finds the record.
        let stopped = ids[0]
        _ = try await rig.h.redis.send("SET", rig.customers.optOutKey(channel: "sms", address: phones[stopped]!), "opted_out|\(rig.h.now)")
        // Already messaged an hour ago: over the cap of one a day.
        let capped = ids[1]
        _ = try await rig.h.redis.send("ZADD", Keys.contactHistory(capped), String(rig.h.now - 3_600_000), "sms:earlier")
        _ = try await rig.h.redis.send("CONFIG", "RESETSTAT")
        // On a single Redis, MONITOR shows every key; a cluster refuses a function's undeclared key itself.
        let monitor = try rig.h.server.map { try RedisMonitor(port: $0.port) }

        let senders = try rig.runSenders()
        defer { senders.cancel() }
        try await rig.h.test { client in
            let created = try await client.send(
                .post, "/api/v1/campaigns",
                json: CampaignTests.campaignJSON(audience: "batch", channels: #"[{"channel":"sms","text":"Hi {{profile.nickname}}, the Expo opens at 9."}]"#))
            let id = try XCTUnwrap(created.json["id"] as? String, created.text)
            _ = try await client.send(.post, "/api/v1/campaigns/\(id)/start", json: "{}")
            let deadline = Date().addingTimeInterval(20)
            var progress = [String: Any]()
            while Date() < deadline {
                progress = try await client.get("/api/v1/campaigns/\(id)").json["progress"] as? [String: Any] ?? [:]
                if progress["sent"] as? Int == 148, progress["skipped"] as? Int == 1 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            XCTAssertEqual(progress["sent"] as? Int, 148, "\(progress)")
            XCTAssertEqual(progress["skipped"] as? Int, 1, "\(progress)")
            XCTAssertEqual(progress["open"] as? Int, 1, "the capped message waits: \(progress)")
        }
        // Every key the message functions touched was passed to them (none derived inside Lua).
        if let monitor {
            let seen = try await RedisMonitor.undeclaredKeys(try monitor.stop(), functions: ["message_", "campaign_", "rate_limit_"], redis: rig.h.redis)
            XCTAssertGreaterThan(seen.calls, 3)
            XCTAssertEqual(seen.undeclared, [])
        }
        let sms = rig.fakes.ledger.deliveries("twilio")
        XCTAssertEqual(sms.count, 148)
        XCTAssertEqual(Set(sms.map(\.to)), Set(ids.dropFirst(2).map { phones[$0]! }), "each recipient once, neither held one")
        let i = try XCTUnwrap(sms.first.flatMap { Int($0.to.dropFirst(6)) })
        XCTAssertEqual(sms.first?.body["Body"], "Hi Fan \(i), the Expo opens at 9.")

        let store = MessageStore(redis: rig.h.redis)
        func message(of customer: String) async throws -> OutboundMessage {
            let ids = try await rig.h.redis.send("ZRANGE", Keys.customerMessages(customer), "0", "0").strings
            let mid = try XCTUnwrap(ids.first)
            let m = try await store.get(mid)
            return try XCTUnwrap(m)
        }
        let skipped = try await message(of: stopped)
        XCTAssertEqual(skipped.state, .skipped)
        XCTAssertEqual(skipped.reason, "sms_opted_out")
        let deferred = try await message(of: capped)
        XCTAssertEqual(deferred.state, .retrying)
        XCTAssertEqual(deferred.lastError, "deferred: frequency_cap")
        XCTAssertEqual(deferred.attempts, 0, "a deferral is not an attempt")
        let history = try await rig.h.redis.send("ZCARD", Keys.contactHistory(ids[2])).int
        XCTAssertEqual(history, 1, "the batch claim records each send in the recipient's history")

        // One message at a time costs two function calls each (claim, complete); batches a handful in all.
        let stats = try await rig.h.redis.send("INFO", "commandstats").string ?? ""
        let fcalls = stats.split(whereSeparator: \.isNewline).first { $0.hasPrefix("cmdstat_fcall:") }
            .flatMap { line in line.split(separator: ",").first { $0.hasPrefix("cmdstat_fcall:calls=") } }
            .flatMap { Int($0.dropFirst("cmdstat_fcall:calls=".count)) } ?? 0
        XCTAssertGreaterThan(fcalls, 0)
        // On a cluster a batch is claimed and completed per slot (docs/cluster-key-model.md), and these
        // recipients are in different slots: the bound holds for a single Redis.
        if !rig.h.redis.isCluster { XCTAssertLessThan(fcalls, 60, "148 sends in batches, not one call each") }
        await rig.fakes.stop()
    }

    /// Several caps with different windows in one batch claim: the contact history is read once (the
    /// longest window) and each cap counts only its own window and channel.
    func test_batchClaim_holdsEveryCap_inItsOwnWindow() async throws {
        let h = try Harness()
        let store = MessageStore(redis: h.redis)
        let hour: Int64 = 3_600_000
        let now = h.now
        let rules = ContactRules(
            caps: [ContactRules.Cap(channel: nil, max: 2, windowHours: 168), ContactRules.Cap(channel: "sms", max: 1, windowHours: 24)],
            timezone: "Asia/Shanghai")
        // Each recipient's history before the claim, and what the claim must answer.
        let cases: [(subject: String, history: [(String, Int64)], expected: MessageStore.Claim)] = [
            ("weekFull", [("email:a", now - 48 * hour), ("wechat:b", now - 100 * hour)], .capped(untilMs: now - 100 * hour + 168 * hour + 1)),
            ("smsYesterday", [("sms:c", now - 30 * hour)], .claimed(attempt: 1)),
            ("smsToday", [("sms:d", now - 2 * hour)], .capped(untilMs: now - 2 * hour + 24 * hour + 1)),
            ("longAgo", [("email:e", now - 200 * hour), ("sms:f", now - 170 * hour)], .claimed(attempt: 1)),
        ]
        var requests = [MessageStore.ClaimRequest]()
        var ids = [String]()  // in each recipient's slot on a cluster
        for c in cases {
            for (member, at) in c.history { _ = try await h.redis.send("ZADD", Keys.contactHistory(c.subject), String(at), member) }
            let id = store.newId(now: now, recipient: c.subject)
            ids.append(id)
            _ = try await h.redis.send("HSET", Keys.message(id), "id", id, "state", "queued", "channel", "sms", "attempts", "0")
            requests.append(.init(id: id, campaign: nil, entry: nil, contactSubject: c.subject, optOutKey: nil))
        }
        let claims = try await store.claimBatch(requests, owner: "test", now: now, caps: rules.capArguments(channel: "sms"))
        XCTAssertEqual(claims, cases.map(\.expected))
        for (i, c) in cases.enumerated() {
            let members = try await h.redis.send("ZRANGE", Keys.contactHistory(c.subject), "0", "-1").strings
            if case .claimed = c.expected {
                XCTAssertTrue(members.contains("sms:\(ids[i])"), "the send is recorded: \(members)")
                XCTAssertFalse(members.contains { $0 == "email:e" || $0 == "sms:f" }, "older than the longest window: trimmed")
                let state = try await h.redis.send("HMGET", Keys.message(ids[i]), "state", "attempts").strings
                XCTAssertEqual(state, ["sending", "1"])
            } else {
                XCTAssertEqual(members.count, c.history.count, "a capped claim records nothing")
            }
        }
    }
}
