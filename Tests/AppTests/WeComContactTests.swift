import App
import FakeProviders
import Foundation
import GatewayCore
import Hummingbird
import HummingbirdTesting
import Outbound
import Store
import XCTest

/// A salesperson adds a customer on WeCom: the customer is the same customer as the Official Account
/// follower (linked by unionid), owned by the salesperson, tagged from the contact way's state, and
/// welcomed within the WelcomeCode's 20 seconds.
final class WeComContactTests: XCTestCase {
    func rig() async throws -> (Harness, ProviderFakes) {
        let fakes = try await ProviderFakes.start()
        let h = try Harness { config in
            config.outbound.wecomApiBase = fakes.baseURL
            if let i = config.accounts.firstIndex(where: { $0.id == "corp" }) { config.accounts[i].appSecret = "corp-contact-secret" }
        }
        fakes.wecom.addCorp(corpId: h.config.account("corp")!.appId, secret: "corp-contact-secret")
        return (h, fakes)
    }

    static func add(_ h: Harness, external: String, user: String, state: String?, code: String?) throws -> CallbackBuilder.Request {
        try h.builder("corp").post(
            xml: SampleCallbacks.externalContact(
                corpId: h.config.account("corp")!.appId, change: "add_external_contact", userId: user, externalUserId: external, createTime: h.nowSeconds,
                state: state, welcomeCode: code),
            timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: true)
    }

    func test_anAddLinksToTheFollowerByUnionid_setsOwnerAndSource_andWelcomesWithinTwentySeconds() async throws {
        let (h, fakes) = try await rig()
        fakes.wecom.addContact("wmEXPO01", .init(name: "李雷", unionId: "uLILEI", followUsers: [("sales-li", "expo-booth-b")]))
        fakes.wecom.issueWelcomeCode("WELCOME-1")
        let sync = try XCTUnwrap(makeOutbound(config: h.config, redis: h.redis, adapters: try loadAdapters(config: h.config), clock: h.clock).wecomContacts)
        let worker = Task { await sync.run() }
        defer { worker.cancel() }
        try await Task.sleep(for: .milliseconds(200))  // the group starts at the stream's end
        try await h.test { client in
            let rules = #"{"welcome":{"type":"text","text":"hi"},"sceneWelcomes":{"expo-booth-b":{"type":"news","articles":[{"title":"Booth B","url":"https://expo.example.com/b"}]}}}"#
            let put = try await client.send(.put, "/api/v1/accounts/corp/replies", json: rules)
            XCTAssertEqual(put.status, .ok, put.text)
            // The same person already follows the Official Account (their unionid came with a message).
            let follower = try h.builder("demo").post(
                xml: SampleCallbacks.event(to: "gh", from: "oLILEI", event: "subscribe", createTime: h.nowSeconds, extra: "<UnionId>uLILEI</UnionId>"),
                timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false)
            _ = try await client.callback(follower)
            let oa = try await client.get("/api/v1/customers/lookup?account=demo&openid=oLILEI")
            let oaId = try XCTUnwrap(oa.json["id"] as? String)

            let added = try await client.callback(try Self.add(h, external: "wmEXPO01", user: "sales-li", state: "expo-booth-b", code: "WELCOME-1"))
            XCTAssertEqual(added.status, .ok)

            var customer = [String: Any]()
            var followerNow: String?
            for _ in 0..<200 {
                customer = try await client.get("/api/v1/customers/lookup?account=corp&wecom=wmEXPO01").json
                followerNow = try await client.get("/api/v1/customers/lookup?account=demo&openid=oLILEI").json["id"] as? String
                // The sync binds the unionid (the merge), then writes the contact's name: wait for both.
                if customer["id"] as? String == followerNow, (customer["profile"] as? [String: Any])?["wecomName"] != nil { break }
                try await Task.sleep(for: .milliseconds(25))
            }
            XCTAssertEqual(customer["id"] as? String, followerNow, "one customer: the WeCom contact and the follower merged by unionid")
            XCTAssertFalse(oaId.isEmpty)
            XCTAssertEqual(customer["owner"] as? String, "sales-li")
            XCTAssertTrue((customer["tags"] as? [String] ?? []).contains("source:expo-booth-b"), "\(customer)")
            XCTAssertEqual((customer["sources"] as? [String: String])?["wecom:corp"], "expo-booth-b")
            XCTAssertEqual((customer["profile"] as? [String: Any])?["wecomName"] as? String, "李雷")
            let types = Set((customer["identities"] as? [[String: Any]] ?? []).compactMap { $0["type"] as? String })
            XCTAssertEqual(types, ["openid", "wecom", "unionid"])

            let welcome = try XCTUnwrap(fakes.wecom.welcomes.first)
            XCTAssertEqual(welcome.code, "WELCOME-1")
            XCTAssertLessThan(welcome.afterMs, 20_000)
            let body = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(welcome.body.utf8)) as? [String: Any])
            let link = ((body["attachments"] as? [[String: Any]])?.first?["link"] as? [String: Any])
            XCTAssertEqual(link?["title"] as? String, "Booth B", "the state's welcome, as a link attachment")

            // The per-state report counts the add.
            let report = try await client.get("/api/v1/accounts/corp/qrcodes")
            XCTAssertEqual(report.status, .badRequest, "QR codes are for Official Accounts")
        }
        let counts = try await SurfaceStore(redis: h.redis).sceneCounts(account: "corp")["expo-booth-b"]
        XCTAssertEqual(counts?.subscribes, 1)
        await fakes.stop()
    }

    /// A contact WeCom will not return (84061) is counted and left; it does not hold up the welcome of
    /// the contact after it in the same batch.
    func test_aContactWeComWillNotReturn_doesNotHoldUpTheNextWelcome() async throws {
        let (h, fakes) = try await rig()
        fakes.wecom.addContact("wmNEXT", .init(name: "Next", unionId: nil, followUsers: [("sales-li", nil)]))
        fakes.wecom.issueWelcomeCode("WELCOME-NEXT")
        try await h.test { client in
            let put = try await client.send(.put, "/api/v1/accounts/corp/replies", json: #"{"welcome":{"type":"text","text":"hi"}}"#)
            XCTAssertEqual(put.status, .ok)
            for (external, code) in [("wmGHOST", "WELCOME-GHOST"), ("wmNEXT", "WELCOME-NEXT")] {
                let r = try await client.callback(try Self.add(h, external: external, user: "sales-li", state: nil, code: code))
                XCTAssertEqual(r.status, .ok)
            }
        }
        for stream in h.redis.streams.all(Keys.inboundStream) {
            _ = try await h.redis.send("XGROUP", "CREATE", stream, WeComContactSync.group, "0", "MKSTREAM")
        }
        let sync = try XCTUnwrap(makeOutbound(config: h.config, redis: h.redis, adapters: try loadAdapters(config: h.config), clock: h.clock).wecomContacts)
        let worker = Task { await sync.run() }
        defer { worker.cancel() }
        for _ in 0..<200 where fakes.wecom.welcomes.isEmpty { try await Task.sleep(for: .milliseconds(25)) }
        XCTAssertEqual(fakes.wecom.welcomes.map(\.code), ["WELCOME-NEXT"])
        XCTAssertEqual(fakes.ledger.calls("wecom.externalcontact.get"), 2)
        await fakes.stop()
    }

    func test_anExpiredWelcomeCodeIsNotUsed_butTheContactIsStillLinked() async throws {
        let (h, fakes) = try await rig()
        fakes.wecom.addContact("wmLATE", .init(name: "Late", unionId: nil, followUsers: [("sales-wang", nil)]))
        fakes.wecom.issueWelcomeCode("WELCOME-LATE")
        try await h.test { client in
            let added = try await client.callback(try Self.add(h, external: "wmLATE", user: "sales-wang", state: nil, code: "WELCOME-LATE"))
            XCTAssertEqual(added.status, .ok)
        }
        // The worker reads the stored event 25 s after it came (a backlog): too late for the code.
        h.now += 25_000
        let sync = try XCTUnwrap(makeOutbound(config: h.config, redis: h.redis, adapters: try loadAdapters(config: h.config), clock: h.clock).wecomContacts)
        for stream in h.redis.streams.all(Keys.inboundStream) {
            _ = try await h.redis.send("XGROUP", "CREATE", stream, WeComContactSync.group, "0", "MKSTREAM")
        }
        let worker = Task { await sync.run() }
        defer { worker.cancel() }
        var name: String?
        for _ in 0..<200 {
            if let id = try await CustomerStore(redis: h.redis, config: h.config).lookup(Identity(kind: .wecom, account: "corp", value: "wmLATE")),
                case .found(let c) = try await CustomerStore(redis: h.redis, config: h.config).customer(id: id)
            {
                name = c.fields["profile.wecomName"]
                if name != nil {
                    XCTAssertEqual(c.fields["owner"], "sales-wang")
                    break
                }
            }
            try await Task.sleep(for: .milliseconds(25))
        }
        XCTAssertEqual(name, "Late")
        XCTAssertEqual(fakes.ledger.calls("wecom.send_welcome_msg"), 0, "no call with a code past its 20 s")
        await fakes.stop()
    }
}
