import App
import FakeProviders
import Foundation
import GatewayCore
import Campaigns
import Hummingbird
import HummingbirdTesting
import NIOConcurrencyHelpers
import Outbound
import Store
import XCTest

/// A campaign's `wecom` channel: one group-send task per owner (`add_msg_template`, sent by the
/// salesperson who owns the customers), WeCom's `fail_list` and the members' results counted into the
/// campaign's report, and a task a crashed process created found on WeCom instead of created twice.
final class WeComGroupSendTests: XCTestCase {
    static let text = "Expo day 2: the booth opens at 9"
    static let channels = """
        [{"channel":"wecom","account":"corp","text":"\(text)",
          "attachments":[{"type":"news","articles":[{"title":"Floor plan","url":"https://expo.example.com/plan"}]}]}]
        """

    struct Rig {
        let h: Harness
        let fakes: ProviderFakes
        let parts: OutboundParts
    }

    /// The corp with its customer-contact secret; customers added on WeCom by two salespeople and one
    /// Official Account follower, all tagged `expo-guests`. sales-b's `wmB2` is not (or no longer) their
    /// contact on WeCom.
    func rig() async throws -> Rig {
        let fakes = try await ProviderFakes.start()
        let h = try Harness { config in
            config.outbound.wecomApiBase = fakes.baseURL
            if let i = config.accounts.firstIndex(where: { $0.id == "corp" }) { config.accounts[i].appSecret = "corp-contact-secret" }
        }
        // The fake WeCom dates its messages by the wall clock; the lookup after a crash compares times.
        h.now = Int64(Date().timeIntervalSince1970 * 1000)
        fakes.wecom.addCorp(corpId: h.config.account("corp")!.appId, secret: "corp-contact-secret")
        for ext in ["wmA1", "wmA2", "wmA3"] { fakes.wecom.addContact(ext, .init(name: ext, unionId: nil, followUsers: [("sales-a", "expo")])) }
        fakes.wecom.addContact("wmB1", .init(name: "wmB1", unionId: nil, followUsers: [("sales-b", "expo")]))
        let customers = CustomerStore(redis: h.redis, config: h.config)
        let tags = TagStore(redis: h.redis)
        _ = try await tags.create("expo-guests")
        let found = NIOLockedValueBox<[String]>([])
        try await h.test { client in
            for (ext, user) in [("wmA1", "sales-a"), ("wmA2", "sales-a"), ("wmA3", "sales-a"), ("wmB1", "sales-b"), ("wmB2", "sales-b")] {
                let r = try await client.callback(try WeComContactTests.add(h, external: ext, user: user, state: "expo", code: nil))
                XCTAssertEqual(r.status, .ok)
                let c = try await client.get("/api/v1/customers/lookup?account=corp&wecom=\(ext)")
                let id = try XCTUnwrap(c.json["id"] as? String, c.text)
                found.withLockedValue { $0.append(id) }
            }
        }
        var ids = found.withLockedValue { $0 }
        ids.append(try await customers.upsertFollower(account: "demo", openid: "o-no-wecom", unionid: nil, profile: [:], nowMs: h.now).id)
        _ = try await tags.apply("expo-guests", add: true, customerIds: ids)
        let parts = makeOutbound(config: h.config, redis: h.redis, adapters: try loadAdapters(config: h.config), clock: h.clock)
        return Rig(h: h, fakes: fakes, parts: parts)
    }

    /// Starts the campaign and plans it to the end (the planner alone).
    static func startAndPlan(_ rig: Rig, _ client: some TestClientProtocol) async throws -> String {
        let created = try await client.send(.post, "/api/v1/campaigns", json: CampaignTests.campaignJSON(audience: "expo-guests", channels: Self.channels))
        XCTAssertEqual(created.status, .created, created.text)
        let id = try XCTUnwrap(created.json["id"] as? String)
        try await plan(rig, client, id)
        return id
    }

    static func plan(_ rig: Rig, _ client: some TestClientProtocol, _ id: String) async throws {
        _ = try await client.send(.post, "/api/v1/campaigns/\(id)/start", json: "{}")
        let planner = Task { await rig.parts.campaigns.run(intervalMs: 20) }
        defer { planner.cancel() }
        for _ in 0..<400 {
            if try await rig.h.redis.send("HGET", Keys.campaign(id), "planDone").string == "1" { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let done = try await rig.h.redis.send("HGET", Keys.campaign(id), "planDone").string
        XCTAssertEqual(done, "1")
    }

    static func report(_ client: some TestClientProtocol, _ id: String) async throws -> [String: Any] {
        let r = try await client.get("/api/v1/campaigns/\(id)/report")
        XCTAssertEqual(r.status, .ok, r.text)
        return r.json
    }

    func test_aTaskPerOwner_failListAndResultsInTheReport_andNoTaskTwice() async throws {
        let rig = try await rig()
        let sender = try XCTUnwrap(rig.parts.wecomGroups)
        try await rig.h.test { client in
            let id = try await Self.startAndPlan(rig, client)
            try await sender.pass()

            let messages = rig.fakes.wecom.groupMessages
            XCTAssertEqual(messages.count, 2, "one task per owner")
            let a = try XCTUnwrap(messages.first { $0.sender == "sales-a" })
            let b = try XCTUnwrap(messages.first { $0.sender == "sales-b" })
            XCTAssertEqual(a.externalUserIds, ["wmA1", "wmA2", "wmA3"])
            XCTAssertEqual(b.externalUserIds, ["wmB1"])
            XCTAssertEqual(b.failList, ["wmB2"], "WeCom refuses a contact the sender does not have")
            let body = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(a.body.utf8)) as? [String: Any])
            XCTAssertEqual(body["chat_type"] as? String, "single")
            XCTAssertEqual(body["sender"] as? String, "sales-a")
            XCTAssertEqual((body["text"] as? [String: Any])?["content"] as? String, Self.text)
            let link = ((body["attachments"] as? [[String: Any]])?.first?["link"] as? [String: Any])
            XCTAssertEqual(link?["title"] as? String, "Floor plan")
            XCTAssertEqual(link?["url"] as? String, "https://expo.example.com/plan")

            var r = try await Self.report(client, id)
            var tasks = try XCTUnwrap(r["wecomTasks"] as? [[String: Any]])
            XCTAssertEqual(tasks.map { $0["owner"] as? String }, ["sales-a", "sales-b"])
            XCTAssertEqual(tasks.map { $0["state"] as? String }, ["submitted", "submitted"])
            XCTAssertEqual(tasks.map { $0["msgId"] as? String }, [a.msgId, b.msgId])
            XCTAssertEqual(tasks.map { $0["recipients"] as? Int }, [3, 2])
            XCTAssertEqual(tasks[1]["failList"] as? Int, 1)
            var totals = try XCTUnwrap(r["totals"] as? [String: Int])
            XCTAssertEqual(totals["planned"], 6)
            XCTAssertEqual(totals["queued"], 5)
            XCTAssertEqual(totals["open"], 0, "every recipient is with WeCom now")
            XCTAssertEqual(totals["failed"], 1)
            XCTAssertEqual(totals["skipped"], 1)
            XCTAssertEqual((r["skipped"] as? [String: Int])?["no_wecom_contact"], 1, "the follower who is not a WeCom contact")
            XCTAssertEqual((r["failed"] as? [String: Int])?["wecom_not_contact"], 1)

            // Another pass (or another process) creates nothing more.
            try await sender.pass()
            XCTAssertEqual(rig.fakes.wecom.groupMessages.count, 2)
            XCTAssertEqual(rig.fakes.ledger.calls("wecom.add_msg_template"), 2)

            // sales-a confirms in WeCom; wmA3 already got another group message today.
            rig.fakes.wecom.receivedGroupMessageToday("wmA3")
            rig.fakes.wecom.confirmGroupMessages(sender: "sales-a")
            try await sender.pass()
            XCTAssertEqual(rig.fakes.ledger.calls("wecom.get_groupmsg_send_result"), 0, "results are first asked for 30 s after the task")
            rig.h.now += 31_000
            try await sender.pass()
            XCTAssertEqual(rig.fakes.ledger.calls("wecom.get_groupmsg_send_result"), 2, "one poll per task")

            r = try await Self.report(client, id)
            tasks = try XCTUnwrap(r["wecomTasks"] as? [[String: Any]])
            XCTAssertEqual(tasks[0]["results"] as? [String: Int], ["unsent": 0, "sent": 2, "notFriend": 0, "alreadyReceived": 1])
            XCTAssertEqual(tasks[1]["results"] as? [String: Int], ["unsent": 1, "sent": 0, "notFriend": 0, "alreadyReceived": 0])
            totals = try XCTUnwrap(r["totals"] as? [String: Int])
            XCTAssertEqual(totals["sent"], 2)
            XCTAssertEqual(totals["skipped"], 2)
            XCTAssertEqual((r["skipped"] as? [String: Int])?["wecom_already_received"], 1)
            XCTAssertEqual((r["channels"] as? [String: [String: Int]])?["wecom"]?["sent"], 2)

            // sales-a's task is final: never polled again. sales-b's is polled later, and counts once.
            rig.h.now += 120_000
            try await sender.pass()
            XCTAssertEqual(rig.fakes.ledger.calls("wecom.get_groupmsg_send_result"), 3, "only the unfinished task")
            rig.fakes.wecom.confirmGroupMessages(sender: "sales-b")
            rig.h.now += 1_900_000
            try await sender.pass()
            rig.h.now += 1_900_000
            try await sender.pass()
            r = try await Self.report(client, id)
            totals = try XCTUnwrap(r["totals"] as? [String: Int])
            XCTAssertEqual(totals["sent"], 3, "each recipient counted once however often it is polled")
            let polls = try await rig.h.redis.send("ZCARD", Keys.wecomResultPolls).int
            XCTAssertEqual(polls, 0, "polling ended: every recipient is final")

            let campaign = try await CampaignStore(redis: rig.h.redis).get(id)
            try await rig.parts.campaigns.step(try XCTUnwrap(campaign))
            _ = try await CampaignTests.waitForState(client, id, "completed", seconds: 5)
        }
    }

    func test_aTaskACrashedProcessCreated_isFoundOnWeCom_notCreatedAgain() async throws {
        let rig = try await rig()
        let sender = try XCTUnwrap(rig.parts.wecomGroups)
        try await rig.h.test { client in
            let id = try await Self.startAndPlan(rig, client)
            // A process claimed sales-a's task, created it on WeCom and died before recording it.
            let task = WeComGroupTask(account: "corp", owner: "sales-a", variant: "default", chunk: 0, recipients: 3)
            let store = WeComGroupStore(redis: rig.h.redis)
            try await store.add(id, [task])
            _ = try await rig.h.redis.send("HSET", Keys.campaignWeComClaims(id), task.id, "\(rig.h.now - 5_000)|dead-process")
            let created = try await Self.createDirectly(rig, sender: "sales-a", ids: ["wmA1", "wmA2", "wmA3"])

            try await sender.pass()
            var r = try await Self.report(client, id)
            XCTAssertEqual((r["wecomTasks"] as? [[String: Any]])?.first?["state"] as? String, "pending", "the dead process's claim has not run out yet")
            XCTAssertEqual(rig.fakes.wecom.groupMessages.filter { $0.sender == "sales-a" }.count, 1)

            rig.h.now += 121_000
            try await sender.pass()
            XCTAssertEqual(rig.fakes.wecom.groupMessages.filter { $0.sender == "sales-a" }.count, 1, "found on WeCom, not created again")
            XCTAssertEqual(rig.fakes.wecom.groupMessages.filter { $0.sender == "sales-b" }.count, 1)
            r = try await Self.report(client, id)
            let a = try XCTUnwrap((r["wecomTasks"] as? [[String: Any]])?.first { $0["owner"] as? String == "sales-a" })
            XCTAssertEqual(a["msgId"] as? String, created)
            XCTAssertEqual(a["foundAfterCrash"] as? Bool, true)
            XCTAssertEqual((r["totals"] as? [String: Int])?["open"], 0)
        }
    }

    func test_theConsoleMakesTheWeComChannel_andShowsTheTasks() async throws {
        let rig = try await rig()
        let sender = try XCTUnwrap(rig.parts.wecomGroups)
        try await rig.h.test { client in
            let (cookie, csrf) = try await ConsoleActionTests.signIn(client, "mara", role: "marketer")
            let form = try await client.execute(uri: "/console/campaigns/new", method: .get, headers: [.cookie: cookie])
            XCTAssertTrue(form.text.contains(#"id="on-wecom""#), "the WeCom channel is offered when a WeCom account has its secret")
            let fields: [(String, String)] = [
                ("csrf", csrf), ("_method", "POST"), ("_path", "/api/v1/campaigns"), ("_gates", "channels[0],channels[1],channels[2],channels[3],variants[1]"),
                ("_on", "channels[3]"), ("name", "Expo day 2"), ("audience", "expo-guests"), ("channels[0].channel", "sms"), ("channels[0].text", "unused"),
                ("channels[3].channel", "wecom"), ("channels[3].account", "corp"), ("channels[3].text", Self.text),
                ("channels[3].attachments:json", #"[{"type":"news","articles":[{"title":"Floor plan","url":"https://expo.example.com/plan"}]}]"#),
            ]
            let body = fields.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }.joined(separator: "&")
            let made = try await ConsoleActionTests.act(client, cookie, body, json: true)
            XCTAssertEqual(made.status, .ok, made.text)
            let list = try await client.get("/api/v1/campaigns")
            let campaign = try XCTUnwrap((list.json["campaigns"] as? [[String: Any]])?.first { $0["name"] as? String == "Expo day 2" })
            let id = try XCTUnwrap(campaign["id"] as? String)
            let definition = try XCTUnwrap(campaign["definition"] as? [String: Any])
            XCTAssertEqual((definition["channels"] as? [[String: Any]])?.map { $0["channel"] as? String }, ["wecom"], "only the ticked channel")

            try await Self.plan(rig, client, id)
            try await sender.pass()
            let page = try await client.execute(uri: "/console/campaigns/\(id)", method: .get, headers: [.cookie: cookie])
            XCTAssertTrue(page.text.contains("data-wecom-tasks"), page.text)
            let table = String(page.text.split(separator: "data-wecom-tasks")[1].prefix(2_000))
            XCTAssertTrue(table.contains("sales-a") && table.contains("sales-b"), table)
            XCTAssertTrue(table.contains("With the member"), table)
        }
    }

    /// `add_msg_template` as the crashed process called it.
    static func createDirectly(_ rig: Rig, sender: String, ids: [String]) async throws -> String {
        let api = WeComContactAPI(
            tokens: AccessTokenManager(
                redis: rig.h.redis, baseURL: rig.fakes.baseURL,
                accounts: [.init(account: "corp", appId: rig.h.config.account("corp")!.appId, secret: "corp-contact-secret")], flavor: .wecom, clock: rig.h.clock),
            baseURL: rig.fakes.baseURL)
        return try await api.createGroupTask(
            account: "corp", sender: sender, externalUserIds: ids, text: text,
            attachments: [.news([.init(title: "Floor plan", url: "https://expo.example.com/plan")])]
        ).msgId
    }

    func test_aGroupSendCannotNameCustomerFields_andIsNotAJourneyChannel() async throws {
        let rig = try await rig()
        try await rig.h.test { client in
            let personal = #"[{"channel":"wecom","account":"corp","text":"Hi {{profile.nickname}}"}]"#
            let r = try await client.send(.post, "/api/v1/campaigns", json: CampaignTests.campaignJSON(audience: "expo-guests", channels: personal))
            XCTAssertEqual(r.status, .badRequest)
            XCTAssertTrue(r.text.contains("channels[0].text"), r.text)
            let oa = #"[{"channel":"wecom","account":"demo","text":"Hi"}]"#
            let wrongAccount = try await client.send(.post, "/api/v1/campaigns", json: CampaignTests.campaignJSON(audience: "expo-guests", channels: oa))
            XCTAssertEqual(wrongAccount.errorCode, "unknown_account")
            let journey = #"{"name":"j","trigger":{"event":"subscribe"},"steps":[{"id":"hi","send":{"channels":[{"channel":"wecom","account":"corp","text":"Hi"}]}}]}"#
            let j = try await client.send(.post, "/api/v1/journeys", json: journey)
            XCTAssertEqual(j.status, .badRequest, j.text)
            XCTAssertTrue(j.text.contains("campaign channel"), j.text)
        }
    }
}
