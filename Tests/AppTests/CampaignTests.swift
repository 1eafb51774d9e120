import App
import Campaigns
import FakeProviders
import Foundation
import GatewayCore
import HTTPTypes
import HummingbirdTesting
import Outbound
import RedisClient
import Store
import XCTest
import Yams

/// Audiences, the campaign lifecycle and campaign sends through the senders to loopback fakes, on a
/// real Redis. Customers are made through the same scripts webhooks and imports use.
final class CampaignTests: XCTestCase {
    struct Rig: Sendable {
        let h: Harness
        let fakes: ProviderFakes
        let customers: CustomerStore
        let tags: TagStore

        /// A follower of `demo` (openid), optionally with a phone, tags and profile fields.
        @discardableResult
        func customer(_ openid: String?, phone: String? = nil, email: String? = nil, tags names: [String] = [], profile: [String: String] = [:])
            async throws -> String
        {
            var id: String
            if let openid {
                id = try await customers.upsertFollower(account: "demo", openid: openid, unionid: nil, profile: profile, nowMs: h.now).id
            } else {
                // No WeChat identity: an import by phone, as the admin API's identity binding does it.
                id = try await customers.upsertFollower(account: "plain", openid: "tmp-\(phone ?? email ?? "")", unionid: nil, profile: profile, nowMs: h.now).id
                _ = try await h.redis.send("SREM", Keys.customerIdentities(id), "openid:plain:tmp-\(phone ?? email ?? "")")
                _ = try await h.redis.send("DEL", "idx:openid:plain:tmp-\(phone ?? email ?? "")")
                try await customers.reindex([id])
            }
            if let phone { _ = try await customers.bind(Identity(kind: .phone, value: phone), to: id, nowMs: h.now) }
            if let email { _ = try await customers.bind(Identity(kind: .email, value: email), to: id, nowMs: h.now) }
            for t in names {
                _ = try await tags.create(t)
                _ = try await tags.apply(t, add: true, customerIds: [id])
            }
            return id
        }

        /// The senders and the campaign runner; with `journeys`, the journey runner too.
        func runSenders(journeys: Bool = false) throws -> Task<Void, any Error> {
            let parts = makeOutbound(config: h.config, redis: h.redis, adapters: try loadAdapters(config: h.config, environment: h.adapterEnvironment), clock: h.clock)
            return Task {
                await withTaskGroup(of: Void.self) { g in
                    g.addTask { try? await parts.engine.run() }
                    g.addTask { await parts.campaigns.run(intervalMs: 50) }
                    if journeys { g.addTask { await parts.journeys.run(intervalMs: 20) } }
                }
            }
        }

        func runPlannerOnly() throws -> Task<Void, any Error> {
            let parts = makeOutbound(config: h.config, redis: h.redis, adapters: try loadAdapters(config: h.config, environment: h.adapterEnvironment), clock: h.clock)
            return Task { await parts.campaigns.run(intervalMs: 50) }
        }
    }

    func rig(configure: @escaping (inout GatewayConfig) -> Void = { _ in }) async throws -> Rig { try await Self.makeRig(configure: configure) }

    static func makeRig(configure: @escaping (inout GatewayConfig) -> Void = { _ in }) async throws -> Rig {
        let fakes = try await ProviderFakes.start()
        let h = try Harness { config in
            config.outbound.channels = ["wechat": "wechat-template", "sms": "twilio-sms", "email": "sendgrid-edm"]
            config.outbound.linkSecret = "test-link-secret-0123456789"
            config.outbound.concurrency = 8
            if let i = config.accounts.firstIndex(where: { $0.id == "demo" }) { config.accounts[i].appSecret = "demo-app-secret" }
            configure(&config)
        }
        h.adapterEnvironment = fakes.environment
        fakes.wechat.addAccount(appId: h.config.account("demo")!.appId, secret: "demo-app-secret")
        return Rig(h: h, fakes: fakes, customers: CustomerStore(redis: h.redis, config: h.config), tags: TagStore(redis: h.redis))
    }

    static func preview(_ client: some TestClientProtocol, _ expression: String) async throws -> (count: Int, sample: Set<String>, body: [String: Any]) {
        let r = try await client.send(.post, "/api/v1/audiences/preview", json: JSONText.object([("expression", JSONText.quote(expression)), ("sample", "100")]))
        XCTAssertEqual(r.status, .ok, "\(expression): \(r.text)")
        return (r.json["count"] as? Int ?? -1, Set(r.json["sample"] as? [String] ?? []), r.json)
    }

    func test_audiencePreview_evaluatesTagsPredicatesAndScoresInRedis() async throws {
        let rig = try await rig()
        let a = try await rig.customer("o-a", tags: ["vip", "expo-2026"])
        let b = try await rig.customer("o-b", phone: "+8613800000001", tags: ["vip", "webinar"])
        let c = try await rig.customer("o-c", tags: ["vip", "expo-2026", "churned"])
        let d = try await rig.customer(nil, phone: "+8613800000002", tags: ["webinar"])
        for (score, id) in [("80", a), ("50", b), ("10", c)] { _ = try await rig.h.redis.send("ZADD", rig.h.shard(id).key(single: Keys.scores), score, id) }

        try await rig.h.test { client in
            let p = try await Self.preview(client, "vip & (expo-2026 | webinar) & !churned")
            XCTAssertEqual(p.count, 2)
            XCTAssertEqual(p.sample, [a, b])
            let notVip = try await Self.preview(client, "!vip")
            XCTAssertEqual(notVip.sample, [d], "! is everyone but")
            let sms = try await Self.preview(client, "consent:sms")
            XCTAssertEqual(sms.sample, [b, d], "customers with a phone that did not opt out")
            let followers = try await Self.preview(client, "account:demo")
            XCTAssertEqual(followers.sample, [a, b, c])
            let wechat = try await Self.preview(client, "consent:wechat:demo & webinar")
            XCTAssertEqual(wechat.sample, [b])
            let high = try await Self.preview(client, "score>=50")
            XCTAssertEqual(high.sample, [a, b])
            let low = try await Self.preview(client, "score<20")
            XCTAssertEqual(low.sample, [c, d], "an unscored customer counts as 0")
            let exact = try await Self.preview(client, "score=50 | score=0")
            XCTAssertEqual(exact.sample, [b, d])

            // Consent changes move customers out of the index at once.
            try await rig.customers.recordOptOut(channel: "sms", address: "+8613800000001", state: "opted_out", nowMs: rig.h.now)
            let after = try await Self.preview(client, "consent:sms")
            XCTAssertEqual(after.sample, [d])

            let unknown = try await Self.preview(client, "vip & vpi")
            XCTAssertEqual(unknown.count, 0)
            XCTAssertEqual(unknown.body["warnings"] as? [String], ["unknown tag vpi: no customer has it"])

            let bad = try await client.send(.post, "/api/v1/audiences/preview", json: #"{"expression":"vip & (expo-2026 | "}"#)
            XCTAssertEqual(bad.status, .badRequest)
            XCTAssertEqual(bad.errorCode, "invalid_expression")
            XCTAssertTrue(((bad.json["error"] as? [String: Any])?["message"] as? String ?? "").contains("position 19"), bad.text)
            let badAccount = try await client.send(.post, "/api/v1/audiences/preview", json: #"{"expression":"account:nope"}"#)
            XCTAssertEqual(badAccount.errorCode, "unknown_account")
        }
        let leftovers = try await rig.h.redis.send("KEYS", "tmp:*").strings
        XCTAssertEqual(leftovers, [], "a preview stores nothing")
    }

    func test_mergingCustomersMovesTheLoserOutOfEveryIndex() async throws {
        let rig = try await rig()
        let a = try await rig.customer("o-a", tags: ["vip"])
        let b = try await rig.customer(nil, phone: "+8613800000009")
        // Only the phone's customer was scored; the survivor takes the score and its index entry.
        _ = try await rig.h.redis.send("HSET", Keys.customer(b), "score", "42.0000", "scoreAt", String(rig.h.now))
        _ = try await rig.h.redis.send("ZADD", rig.h.shard(b).key(single: Keys.scores), "42", b)
        // The phone now turns up on the follower: one customer remains.
        let outcome = try await rig.customers.bind(Identity(kind: .phone, value: "+8613800000009"), to: a, nowMs: rig.h.now)
        guard case .merged(let survivor, let merged) = outcome else { return XCTFail("expected a merge, got \(outcome)") }
        let all = try await rig.h.indexMembers("fidx", "all")
        XCTAssertEqual(all, [survivor])
        let sms = try await rig.h.indexMembers("fidx", "consent:sms")
        XCTAssertEqual(sms, [survivor])
        XCTAssertEqual(Set([a, b]), Set([survivor, merged]))
        let scored = try await rig.h.indexMembers("scores")
        XCTAssertEqual(scored, [survivor], "the merged id leaves the scores index")
        let score = try await rig.h.redis.send("ZSCORE", rig.h.shard(survivor).key(single: Keys.scores), survivor).string
        XCTAssertEqual(score, "42")
    }

    static func campaignJSON(
        audience: String, channels: String, extra: String = ""
    ) -> String {
        #"{"name":"Expo invite","audience":"\#(audience)","channels":\#(channels)\#(extra)}"#
    }

    static let wechatThenSMS = """
        [{"channel":"wechat","account":"demo","template":"TPL-EXPO","data":{"first":"Hi {{profile.nickname}}","keyword1":"Expo 2026"}},
         {"channel":"sms","text":"Hi {{profile.nickname}}, see you at Expo 2026"}]
        """

    func test_lifecycle_transitionsAndIllegalOnes() async throws {
        let rig = try await rig()
        try await rig.customer("o-a", tags: ["vip"], profile: ["nickname": "Ann"])
        try await rig.h.test { client in
            let created = try await client.send(.post, "/api/v1/campaigns", json: Self.campaignJSON(audience: "vip", channels: Self.wechatThenSMS))
            XCTAssertEqual(created.status, .created, created.text)
            XCTAssertEqual(created.json["state"] as? String, "draft")
            let id = try XCTUnwrap(created.json["id"] as? String)
            func act(_ action: String) async throws -> (HTTPResponse.Status, String?, String?) {
                let r = try await client.send(.post, "/api/v1/campaigns/\(id)/\(action)", json: "{}")
                return (r.status, r.json["state"] as? String, r.errorCode)
            }
            var r = try await act("pause")
            XCTAssertEqual(r.0, .conflict)
            XCTAssertEqual(r.2, "illegal_transition")
            r = try await act("resume")
            XCTAssertEqual(r.0, .conflict)
            r = try await act("start")
            XCTAssertEqual(r.1, "running")
            let shown = try await client.get("/api/v1/campaigns/\(id)")
            XCTAssertEqual(shown.json["audienceSize"] as? Int, 1, "snapshot taken at start")
            r = try await act("start")
            XCTAssertEqual(r.0, .conflict, "a running campaign cannot start again")
            r = try await act("pause")
            XCTAssertEqual(r.1, "paused")
            r = try await act("pause")
            XCTAssertEqual(r.0, .conflict)
            r = try await act("resume")
            XCTAssertEqual(r.1, "running")
            r = try await act("cancel")
            XCTAssertEqual(r.1, "cancelled")
            for action in ["start", "pause", "resume", "cancel"] {
                r = try await act(action)
                XCTAssertEqual(r.0, .conflict, "\(action) after cancel")
            }

            // Scheduled for later: waits; past its expiry before it could start: expires, sends nothing.
            rig.h.now += 1000
            let later = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(rig.h.now + 3_600_000) / 1000))
            let end = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(rig.h.now + 7_200_000) / 1000))
            let scheduled = try await client.send(
                .post, "/api/v1/campaigns", json: Self.campaignJSON(audience: "vip", channels: Self.wechatThenSMS, extra: #","startAt":"\#(later)","expiresAt":"\#(end)""#))
            let sid = try XCTUnwrap(scheduled.json["id"] as? String)
            let started = try await client.send(.post, "/api/v1/campaigns/\(sid)/start", json: "{}")
            XCTAssertEqual(started.json["state"] as? String, "scheduled")
            rig.h.now += 7_200_000
            let runner = makeOutbound(
                config: rig.h.config, redis: rig.h.redis, adapters: try loadAdapters(config: rig.h.config, environment: rig.h.adapterEnvironment),
                clock: rig.h.clock
            ).campaigns
            let stored = try await CampaignStore(redis: rig.h.redis).get(sid)
            let state = try await runner.step(try XCTUnwrap(stored))
            XCTAssertEqual(state, .expired)
            let list = try await client.get("/api/v1/campaigns")
            XCTAssertEqual((list.json["campaigns"] as? [[String: Any]])?.compactMap { $0["state"] as? String }, ["expired", "cancelled"])
        }
        XCTAssertEqual(rig.fakes.ledger.deliveries.count, 0, "no sender ran")
    }

    func test_invalidCampaigns_areRefusedWithTheField() async throws {
        let rig = try await rig()
        try await rig.customer("o-a", tags: ["vip"])
        try await rig.h.test { client in
            let cases: [(String, String, String)] = [
                (Self.campaignJSON(audience: "vip &", channels: Self.wechatThenSMS), "invalid_expression", "audience"),
                (Self.campaignJSON(audience: "vpi", channels: Self.wechatThenSMS), "unknown_tag", "vpi"),
                (Self.campaignJSON(audience: "vip", channels: #"[{"channel":"wechat","template":"T"}]"#), "unknown_account", "channels[0].account"),
                (Self.campaignJSON(audience: "vip", channels: #"[{"channel":"fax","text":"x"}]"#), "invalid_campaign", "channels[0].channel"),
                (Self.campaignJSON(audience: "vip", channels: #"[{"channel":"sms","text":"Hi {{#x}}"}]"#), "invalid_campaign", "channels[0].text"),
                (Self.campaignJSON(audience: "vip", channels: #"[{"channel":"email","text":"x"}]"#), "invalid_campaign", "subject"),
                (Self.campaignJSON(audience: "vip", channels: Self.wechatThenSMS, extra: #","holdoutPercent":100"#), "invalid_campaign", "holdoutPercent"),
                (Self.campaignJSON(audience: "vip", channels: Self.wechatThenSMS, extra: #","variants":[{"name":"A","weight":0}]"#), "invalid_campaign", "weight"),
                (Self.campaignJSON(audience: "vip", channels: Self.wechatThenSMS, extra: #","expiresAt":"yesterday""#), "invalid_campaign", "expiresAt"),
            ]
            for (body, code, mention) in cases {
                let r = try await client.send(.post, "/api/v1/campaigns", json: body)
                XCTAssertEqual(r.status, .badRequest, body)
                XCTAssertEqual(r.errorCode, code, body)
                XCTAssertTrue(r.text.contains(mention), "\(body) -> \(r.text)")
            }
        }
        let stored = try await rig.h.redis.send("ZCARD", Keys.campaigns).int
        XCTAssertEqual(stored, 0, "nothing stored")
    }

    static func waitForState(_ client: some TestClientProtocol, _ id: String, _ state: String, seconds: Double = 20) async throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(seconds)
        var last = [String: Any]()
        while Date() < deadline {
            last = try await client.get("/api/v1/campaigns/\(id)").json
            if last["state"] as? String == state { return last }
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTFail("campaign \(id) is \(last["state"] ?? "?"), not \(state): \(last["progress"] ?? "")")
        return last
    }

    func test_campaign_sendsOncePerRecipient_fallsBackByConsent_andReportsSkips() async throws {
        let rig = try await rig()
        var wechatIds = Set<String>()
        for i in 0..<30 { wechatIds.insert(try await rig.customer("o-\(i)", tags: ["vip"], profile: ["nickname": "N\(i)"])) }
        // Unsubscribed from WeChat but has a phone: SMS instead.
        let gone = try await rig.customer("o-gone", phone: "+8613800000100", tags: ["vip"], profile: ["nickname": "Gone"])
        _ = try await rig.h.redis.eval(
            RedisScript(name: "t_revoke", source: "redis.call('HSET', KEYS[1], 'consent.wechat:demo', 'revoked|1') return 1"), keys: [Keys.customer(gone)], args: [])
        try await rig.customers.reindex([gone])
        // A phone but no nickname: the template needs one, so it is skipped with the reason.
        try await rig.customer(nil, phone: "+8613800000101", tags: ["vip"])
        // Nowhere to send.
        try await rig.customer(nil, email: "x@example.com", tags: ["vip"], profile: ["nickname": "X"])

        let senders = try rig.runSenders()
        defer { senders.cancel() }
        try await rig.h.test { client in
            let created = try await client.send(.post, "/api/v1/campaigns", json: Self.campaignJSON(audience: "vip", channels: Self.wechatThenSMS))
            let id = try XCTUnwrap(created.json["id"] as? String, created.text)
            _ = try await client.send(.post, "/api/v1/campaigns/\(id)/start", json: "{}")
            let done = try await Self.waitForState(client, id, "completed")
            let progress = try XCTUnwrap(done["progress"] as? [String: Any])
            XCTAssertEqual(progress["planned"] as? Int, 33)
            XCTAssertEqual(progress["sent"] as? Int, 31)
            XCTAssertEqual(progress["skipped"] as? Int, 2)
            XCTAssertEqual(progress["open"] as? Int, 0)

            let report = try await client.get("/api/v1/campaigns/\(id)/report").json
            XCTAssertEqual(report["skipped"] as? [String: Int], ["missing_variable:profile.nickname": 1, "no_eligible_channel": 1])
            let channels = try XCTUnwrap(report["channels"] as? [String: [String: Int]])
            XCTAssertEqual(channels["wechat"]?["sent"], 30)
            XCTAssertEqual(channels["sms"]?["sent"], 1)
        }
        let wechat = rig.fakes.ledger.deliveries.filter { $0.provider.hasPrefix("wechat") }
        XCTAssertEqual(wechat.count, 30)
        XCTAssertEqual(Set(wechat.map(\.to)).count, 30, "each follower once")
        XCTAssertTrue(wechat.allSatisfy { $0.body["template_id"] == "TPL-EXPO" })
        XCTAssertTrue(wechat.contains { ($0.body["data"] ?? "").contains(#""first":{"value":"Hi N7"}"#) }, "rendered per customer: \(wechat.first?.body ?? [:])")
        let sms = rig.fakes.ledger.deliveries("twilio")
        XCTAssertEqual(sms.map(\.to), ["+8613800000100"])
        XCTAssertEqual(sms.first?.body["Body"], "Hi Gone, see you at Expo 2026")
    }

    /// A template campaign that opens a mini-program: every recipient's template message carries it;
    /// a mini-program on another adapter, or a bad appid, is refused at creation.
    func test_aTemplateCampaign_opensAMiniProgram() async throws {
        let rig = try await rig()
        try await rig.customer("o-mp", tags: ["vip"], profile: ["nickname": "Mia"])
        let channels = #"[{"channel":"wechat","account":"demo","template":"TPL-EXPO","link":"https://expo.example.com","miniprogram":{"appId":"wx286b93c14bbf93aa","pagePath":"pages/expo/index"},"data":{"first":"Hi {{profile.nickname}}"}}]"#
        let senders = try rig.runSenders()
        defer { senders.cancel() }
        try await rig.h.test { client in
            let bad = try await client.send(
                .post, "/api/v1/campaigns",
                json: Self.campaignJSON(audience: "vip", channels: channels.replacingOccurrences(of: "wx286b93c14bbf93aa", with: "not-an-appid")))
            XCTAssertEqual(bad.status, .badRequest, bad.text)
            XCTAssertTrue(bad.text.contains("channels[0].miniprogram"), bad.text)
            let created = try await client.send(.post, "/api/v1/campaigns", json: Self.campaignJSON(audience: "vip", channels: channels))
            let id = try XCTUnwrap(created.json["id"] as? String, created.text)
            _ = try await client.send(.post, "/api/v1/campaigns/\(id)/start", json: "{}")
            _ = try await Self.waitForState(client, id, "completed")
        }
        let sent = try XCTUnwrap(rig.fakes.ledger.deliveries("wechat.template").first)
        XCTAssertEqual(sent.body["miniprogram"], #"{"appid":"wx286b93c14bbf93aa","pagepath":"pages/expo/index"}"#)
        XCTAssertEqual(sent.body["url"], "https://expo.example.com")
    }

    func test_shippedExampleCampaign_reachesCustomersWithoutANickname_onEveryChannel() async throws {
        let rig = try await rig()
        try await rig.customer("o-plain", tags: ["source:expo-2026"])  // a WeChat follower, nothing else known
        try await rig.customer(nil, phone: "+8613800000201", tags: ["source:expo-2026"])
        try await rig.customer(nil, email: "nameless@example.com", tags: ["source:expo-2026"])
        let path = EventsAPITests.root.appendingPathComponent("examples/campaign.yaml").path
        var definition = try XCTUnwrap(try Yams.load(yaml: String(contentsOfFile: path, encoding: .utf8)) as? [String: Any])
        definition["holdoutPercent"] = 0  // every recipient, whatever the random campaign id
        let json = String(decoding: try JSONSerialization.data(withJSONObject: definition), as: UTF8.self)
        let senders = try rig.runSenders()
        defer { senders.cancel() }
        try await rig.h.test { client in
            let created = try await client.send(.post, "/api/v1/campaigns", json: json)
            let id = try XCTUnwrap(created.json["id"] as? String, created.text)
            _ = try await client.send(.post, "/api/v1/campaigns/\(id)/start", json: "{}")
            let done = try await Self.waitForState(client, id, "completed")
            let progress = try XCTUnwrap(done["progress"] as? [String: Any])
            XCTAssertEqual(progress["sent"] as? Int, 3, "\(progress)")
            XCTAssertEqual(progress["skipped"] as? Int, 0, "nobody is skipped for a missing nickname")
        }
        let wechat = rig.fakes.ledger.deliveries.filter { $0.provider.hasPrefix("wechat") }
        XCTAssertTrue(wechat.first.map { ($0.body["data"] ?? "").contains("Hi there, you are invited") } == true, "\(wechat)")
        let sms = try XCTUnwrap(rig.fakes.ledger.deliveries("twilio").first?.body["Body"])
        XCTAssertTrue(sms.hasPrefix("Hi there, Expo 2026") || sms.hasPrefix("Your seat at Expo 2026 is waiting. 1 Dec"), sms)
        XCTAssertEqual(rig.fakes.ledger.deliveries("sendgrid").count, 1)
    }

    func test_pause_parksQueuedMessages_andResumeSendsEachOnce() async throws {
        let rig = try await rig()
        for i in 0..<40 { try await rig.customer("o-\(i)", tags: ["vip"], profile: ["nickname": "N\(i)"]) }
        try await rig.h.test { client in
            // A cap of 5 a second: set-aside messages must not wait for rate slots (40 would take 8 s).
            let created = try await client.send(
                .post, "/api/v1/campaigns", json: Self.campaignJSON(audience: "vip", channels: Self.wechatThenSMS, extra: #","ratePerSecond":5"#))
            let id = try XCTUnwrap(created.json["id"] as? String)
            _ = try await client.send(.post, "/api/v1/campaigns/\(id)/start", json: "{}")
            // Plan everything, then pause before any sender runs.
            let planner = try rig.runPlannerOnly()
            var planned = 0
            for _ in 0..<200 where planned < 40 {
                planned = ((try await client.get("/api/v1/campaigns/\(id)").json["progress"] as? [String: Any])?["queued"] as? Int) ?? 0
                try await Task.sleep(for: .milliseconds(20))
            }
            planner.cancel()
            XCTAssertEqual(planned, 40)
            let paused = try await client.send(.post, "/api/v1/campaigns/\(id)/pause", json: "{}")
            XCTAssertEqual(paused.json["state"] as? String, "paused")

            let senders = try rig.runSenders()
            var parked = 0
            for _ in 0..<200 where parked < 40 {
                parked = try await rig.h.redis.send("SCARD", Keys.campaignParked(id)).int ?? 0
                try await Task.sleep(for: .milliseconds(20))
            }
            XCTAssertEqual(parked, 40, "a paused campaign's messages are set aside")
            XCTAssertEqual(rig.fakes.ledger.deliveries.count, 0, "nothing sent while paused")

            _ = try await client.send(.post, "/api/v1/campaigns/\(id)/resume", json: "{}")
            _ = try await Self.waitForState(client, id, "completed", seconds: 30)
            senders.cancel()
        }
        let sent = rig.fakes.ledger.deliveries.filter { $0.provider.hasPrefix("wechat") }
        XCTAssertEqual(sent.count, 40)
        XCTAssertEqual(Set(sent.map(\.to)).count, 40, "each once")
    }

    func test_frequencyCap_andQuietHours_deferMarketingButNotTransactional() async throws {
        let rig = try await rig { config in
            config.contactRules = ContactRules(
                caps: [ContactRules.Cap(channel: nil, max: 1, windowHours: 24)], quietHours: ContactRules.QuietHours(startMinute: 21 * 60, endMinute: 8 * 60),
                timezone: "Asia/Shanghai")
            // A cap can hold a message for a day; a message may wait up to 3.
            config.outbound.maxAgeHours = 72
        }
        // 2026-09-22 10:00 in Shanghai (02:00 UTC).
        rig.h.now = 1_790_042_400_000
        let id = try await rig.customer(nil, phone: "+8613800000200")
        let senders = try rig.runSenders()
        defer { senders.cancel() }
        let store = MessageStore(redis: rig.h.redis)
        try await rig.h.test { client in
            func send(_ text: String, transactional: Bool = false) async throws -> String {
                let r = try await client.send(
                    .post, "/api/v1/messages", json: #"{"channel":"sms","customerId":"\#(id)","text":"\#(text)","transactional":\#(transactional)}"#)
                return try XCTUnwrap(r.json["id"] as? String, r.text)
            }
            func wait(_ mid: String, _ states: Set<OutboundMessage.State>) async throws -> OutboundMessage {
                for _ in 0..<400 {
                    if let m = try await store.get(mid), states.contains(m.state) { return m }
                    try await Task.sleep(for: .milliseconds(20))
                }
                let last = try await store.get(mid)
                return try XCTUnwrap(last)
            }
            let first = try await wait(try await send("one"), [.sent])
            XCTAssertEqual(first.state, .sent)
            let second = try await wait(try await send("two"), [.retrying, .sent])
            XCTAssertEqual(second.state, .retrying, "over the cap of 1 a day: deferred")
            XCTAssertEqual(second.lastError, "deferred: frequency_cap")
            XCTAssertEqual(second.attempts, 0, "a deferral is not an attempt")
            XCTAssertEqual(second.nextAttemptAt, rig.h.now + 24 * 3_600_000 + 1, "when the first leaves the 24 h window")
            let receipt = try await wait(try await send("code 1234", transactional: true), [.sent])
            XCTAssertEqual(receipt.state, .sent, "transactional messages are exempt")

            // 22:30 in Shanghai: quiet until 08:00 there, the next morning.
            rig.h.now = 1_790_087_400_000
            let night = try await wait(try await send("night"), [.retrying, .sent])
            XCTAssertEqual(night.lastError, "deferred: quiet_hours")
            XCTAssertEqual(night.nextAttemptAt, 1_790_121_600_000)
        }
        XCTAssertEqual(rig.fakes.ledger.deliveries("twilio").map { $0.body["Body"] ?? "" }, ["one", "code 1234"])
    }

    func test_campaignRateCap_pacesItsSends() async throws {
        let rig = try await rig()
        for i in 0..<25 { try await rig.customer("o-\(i)", tags: ["vip"], profile: ["nickname": "N\(i)"]) }
        let senders = try rig.runSenders()
        defer { senders.cancel() }
        try await rig.h.test { client in
            let created = try await client.send(
                .post, "/api/v1/campaigns", json: Self.campaignJSON(audience: "vip", channels: Self.wechatThenSMS, extra: #","ratePerSecond":10"#))
            let id = try XCTUnwrap(created.json["id"] as? String, created.text)
            let started = Date()
            _ = try await client.send(.post, "/api/v1/campaigns/\(id)/start", json: "{}")
            _ = try await Self.waitForState(client, id, "completed", seconds: 30)
            // 25 sends at 10 a second (burst 1): the last goes no sooner than 2.4 s after the first.
            XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 2.3, "the campaign's own cap held its sends back")
        }
        XCTAssertEqual(rig.fakes.ledger.deliveries.filter { $0.provider.hasPrefix("wechat") }.count, 25)
    }

    /// Two activations of one campaign at once (the API's start and the runner's pass, in one process):
    /// one wins, and the loser's snapshot never replaces or deletes the winner's.
    func test_concurrentActivations_keepOneWholeSnapshot() async throws {
        let rig = try await rig()
        let rows = (0..<3000).map { i in
            CustomerStore.ImportRow(identities: [Identity(kind: .openid, account: "demo", value: "o-\(i)")], tags: ["vip"], profile: ["nickname": "N\(i)"])
        }
        for start in stride(from: 0, to: rows.count, by: 1000) { _ = try await rig.customers.importBatch(Array(rows[start..<start + 1000]), nowMs: rig.h.now) }
        let parts = makeOutbound(
            config: rig.h.config, redis: rig.h.redis, adapters: try loadAdapters(config: rig.h.config, environment: rig.h.adapterEnvironment), clock: rig.h.clock)
        let store = CampaignStore(redis: rig.h.redis)
        var adoptedCopies = Set<String>()  // the winners' snapshots, of every round (a cluster's are staging names)
        for round in 0..<5 {
            let id = ULID.make(milliseconds: rig.h.now + Int64(round))
            let definition = CampaignDefinition(
                name: "race", audience: "vip", channels: [.init(channel: "wechat", account: "demo", template: "T", data: ["first": "{{profile.nickname}}"])])
            try await store.create(id: id, definition: definition, json: String(decoding: try JSONEncoder().encode(definition), as: UTF8.self), startAt: nil, expiresAt: nil, now: rig.h.now)
            _ = try await store.transition(id, .schedule, now: rig.h.now)
            let fetched = try await store.get(id)
            let scheduled = try XCTUnwrap(fetched)
            async let first = parts.campaigns.activate(scheduled)
            async let second = parts.campaigns.activate(scheduled)
            let states = try await [first, second]
            XCTAssertTrue(states.contains(.running), "\(states)")
            // On a cluster the snapshot is kept per shard under the name the winner adopted (`Campaign.snapshot`).
            let adopted = try await store.get(id)?.snapshot
            let copies = rig.h.redis.isCluster ? try await rig.h.keys("camp:{*}:" + (adopted ?? "").dropFirst("camp:".count)) : [Keys.campaignAudience(id)]
            var size = 0
            for key in copies { size += try await rig.h.redis.send("SCARD", key).int ?? 0 }
            XCTAssertEqual(size, 3000, "round \(round): the snapshot is whole")
            if rig.h.redis.isCluster { adoptedCopies.formUnion(copies) }
            let staging = Set(try await rig.h.keys("camp:*:staging:*")).subtracting(adoptedCopies)
            XCTAssertEqual(staging, [], "the loser's snapshot is gone")
        }
    }
}
