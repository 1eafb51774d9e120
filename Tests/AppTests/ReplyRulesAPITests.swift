import App
import FakeProviders
import Foundation
import GatewayCore
import GatewayCrypto
import Hummingbird
import HummingbirdTesting
import Outbound
import XCTest

/// Reply rules and menus managed at run time: `GET|PUT|DELETE /accounts/{id}/replies` and
/// `/accounts/{id}/menu`, answered by every process within a poll.
final class ReplyRulesAPITests: XCTestCase {
    static let rules = #"""
        {"welcome":{"type":"text","text":"Welcome! 欢迎关注"},
         "sceneWelcomes":{"booth-a":{"type":"news","articles":[{"title":"Booth A map","description":"Hall 3","url":"https://expo.example.com/a","picUrl":"https://expo.example.com/a.jpg"}]}},
         "keywords":[{"match":"regex","keyword":"^(price|价格)\\s*\\d+$","reply":{"type":"text","text":"see the price list"}},
                     {"match":"exact","keyword":"hello","reply":{"type":"text","text":"new hello"}}],
         "menu":{"V1001_MAP":{"type":"image","mediaId":"MEDIA_MAP_1"}},
         "default":{"type":"text","text":"We will answer soon."}}
        """#

    static func text(_ h: Harness, _ account: String, from: String, _ content: String, encrypt: Bool = false) throws -> CallbackBuilder.Request {
        try h.builder(account).post(
            xml: SampleCallbacks.text(to: "gh", from: from, content: content, msgId: String(Int.random(in: 1...Int(Int32.max))), createTime: h.nowSeconds),
            timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: encrypt)
    }

    static func event(_ h: Harness, _ account: String, from: String, _ event: String, key: String? = nil, encrypt: Bool) throws -> CallbackBuilder.Request {
        try h.builder(account).post(
            xml: SampleCallbacks.event(to: "gh", from: from, event: event, eventKey: key, createTime: h.nowSeconds), timestamp: h.nowSeconds,
            nonce: freshNonce(), encrypt: encrypt)
    }

    /// The passive reply of a response: the XML itself, or for an encrypted one, decrypted without our cipher.
    static func reply(_ r: TestResponse, account: Account) throws -> InboundMessage {
        let envelope = try InboundMessage.parse(Array(r.text.utf8))
        guard let encrypt = envelope.encrypt else { return envelope }
        XCTAssertTrue(WeChatSignature.verify(envelope["MsgSignature"] ?? "", parts: [account.token, envelope["TimeStamp"] ?? "", envelope["Nonce"] ?? "", encrypt]))
        return try InboundMessage.parse(Array(try IndependentWeChatCrypto.decrypt(encrypt, encodingAESKey: account.encodingAESKey!, appId: account.appId).utf8))
    }

    func test_secondProcessAnswersWithChangedRulesWithinASecond() async throws {
        let h = try Harness()
        let adapters = try loadAdapters(config: h.config, environment: h.adapterEnvironment)
        let first = makeOutbound(config: h.config, redis: h.redis, adapters: adapters, clock: h.clock)
        let second = makeOutbound(config: h.config, redis: h.redis, adapters: adapters, clock: h.clock)
        let poller = Task { await second.surfaces.run() }
        defer { poller.cancel() }
        let app1 = buildApplication(config: h.config, redis: h.redis, adapters: adapters, outbound: first, clock: h.clock)
        let app2 = buildApplication(config: h.config, redis: h.redis, adapters: adapters, outbound: second, clock: h.clock)
        try await app1.test(.router) { one in
            try await app2.test(.router) { two in
                let before = try await two.callback(try Self.text(h, "demo", from: "o2", "hello"))
                XCTAssertEqual(try Self.reply(before, account: h.config.account("demo")!)["Content"], "Hi ]]> there", "the config file's rule at first")

                let put = try await one.send(.put, "/api/v1/accounts/demo/replies", json: Self.rules)
                XCTAssertEqual(put.status, .ok, put.text)
                let changedAt = ContinuousClock.now
                var seen: String?
                while ContinuousClock.now - changedAt < .seconds(3) {
                    let r = try await two.callback(try Self.text(h, "demo", from: "o2", "hello"))
                    seen = try Self.reply(r, account: h.config.account("demo")!)["Content"]
                    if seen == "new hello" { break }
                    try await Task.sleep(for: .milliseconds(20))
                }
                let elapsed = ContinuousClock.now - changedAt
                XCTAssertEqual(seen, "new hello")
                XCTAssertLessThan(elapsed, .seconds(1), "the other process polls every 250 ms")
            }
        }
    }

    func test_welcomeSceneWelcomeMenuClickAndKeywords_inPlainAndSafeMode() async throws {
        let h = try Harness()
        let demo = h.config.account("demo")!
        let safe = h.config.account("safe")!
        try await h.test { client in
            for account in ["demo", "safe"] {
                let put = try await client.send(.put, "/api/v1/accounts/\(account)/replies", json: Self.rules)
                XCTAssertEqual(put.status, .ok, put.text)
            }
            // Plain: the welcome.
            let plain = try await client.callback(try Self.event(h, "demo", from: "oW1", "subscribe", encrypt: false))
            XCTAssertEqual(plain.headers[.contentType], "application/xml; charset=utf-8")
            let welcome = try Self.reply(plain, account: demo)
            XCTAssertEqual(welcome["MsgType"], "text")
            XCTAssertEqual(welcome["Content"], "Welcome! 欢迎关注")
            XCTAssertEqual(welcome.toUser, "oW1")

            // Safe mode: a subscribe through the booth code gets the booth's news, encrypted.
            let booth = try await client.callback(try Self.event(h, "safe", from: "oW2", "subscribe", key: "qrscene_booth-a", encrypt: true))
            XCTAssertNotNil(try InboundMessage.parse(Array(booth.text.utf8)).encrypt, "an encrypted request gets an encrypted reply")
            let news = try Self.reply(booth, account: safe)
            XCTAssertEqual(news["MsgType"], "news")
            XCTAssertEqual(news["ArticleCount"], "1")
            XCTAssertEqual(news["Articles.item.Title"], "Booth A map")
            XCTAssertEqual(news["Articles.item.Url"], "https://expo.example.com/a")
            XCTAssertEqual(news["Articles.item.PicUrl"], "https://expo.example.com/a.jpg")

            // Menu clicks, both modes.
            for (account, encrypt) in [(demo, false), (safe, true)] {
                let click = try await client.callback(try Self.event(h, account.id, from: "oW3", "CLICK", key: "V1001_MAP", encrypt: encrypt))
                let image = try Self.reply(click, account: account)
                XCTAssertEqual(image["MsgType"], "image", account.id)
                XCTAssertEqual(image["Image.MediaId"], "MEDIA_MAP_1")
            }
            let unknownKey = try await client.callback(try Self.event(h, "demo", from: "oW3", "CLICK", key: "OTHER", encrypt: false))
            XCTAssertEqual(unknownKey.text, "success")

            // Keywords: the regex rule, then the default.
            let price = try await client.callback(try Self.text(h, "safe", from: "oW4", "价格 42", encrypt: true))
            XCTAssertEqual(try Self.reply(price, account: safe)["Content"], "see the price list")
            let other = try await client.callback(try Self.text(h, "demo", from: "oW4", "something else"))
            XCTAssertEqual(try Self.reply(other, account: demo)["Content"], "We will answer soon.")

            // The reply is part of the conversation kept in the session.
            let lookup = try await client.get("/api/v1/customers/lookup?account=demo&openid=oW1")
            let id = try XCTUnwrap(lookup.json["id"] as? String)
            let session = try await h.redis.send("LRANGE", Keys.sessionMessages(account: "demo", openid: "oW1"), "0", "-1").strings
            XCTAssertEqual(session.count, 2, "the subscribe and the welcome")
            XCTAssertTrue(session.last?.contains("Welcome!") == true, session.last ?? "")
            XCTAssertFalse(id.isEmpty)
        }
    }

    /// A mini-program card cannot be a passive reply: the callback gets "success" and the card goes as a
    /// customer-service message (the sandbox's in this config), once even when WeChat retries.
    func test_aMiniProgramCardReply_goesAsACustomerServiceMessage_once() async throws {
        let h = try Harness()
        let engine = makeOutbound(config: h.config, redis: h.redis, adapters: try loadAdapters(config: h.config), clock: h.clock).engine
        let running = Task { try await engine.run() }
        defer { running.cancel() }
        let rules = #"{"menu":{"SHOP":{"type":"miniprogram","title":"Expo shop","appId":"wx286b93c14bbf93aa","pagePath":"pages/shop/index","thumbMediaId":"THUMB_1"}}}"#
        try await h.test { client in
            let put = try await client.send(.put, "/api/v1/accounts/demo/replies", json: rules)
            XCTAssertEqual(put.status, .ok, put.text)
            let click = try Self.event(h, "demo", from: "oCard", "CLICK", key: "SHOP", encrypt: false)
            let first = try await client.callback(click)
            XCTAssertEqual(first.text, "success")
            var records = [[String: Any]]()
            for _ in 0..<200 {
                records = (try await client.get("/api/v1/sandbox/messages?channel=wechat").json["messages"] as? [[String: Any]]) ?? []
                if !records.isEmpty { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            let request = try XCTUnwrap(records.first?["request"] as? String)
            XCTAssertTrue(request.contains(#""msgtype":"miniprogrampage""#), request)
            XCTAssertTrue(request.contains(#""thumb_media_id":"THUMB_1""#), request)
            XCTAssertEqual(records.first?["to"] as? String, "oCard")

            // WeChat retries the same callback (another nonce): no second card.
            let retry = try Self.event(h, "demo", from: "oCard", "CLICK", key: "SHOP", encrypt: false)
            let second = try await client.callback(retry)
            XCTAssertEqual(second.text, "success")
            try await Task.sleep(for: .milliseconds(300))
            let after = (try await client.get("/api/v1/sandbox/messages?channel=wechat").json["messages"] as? [[String: Any]]) ?? []
            XCTAssertEqual(after.count, 1)
        }
    }

    func test_invalidRulesAre400WithWhere_andDeleteGoesBackToTheConfigFile() async throws {
        let h = try Harness()
        try await h.test { client in
            let before = try await client.get("/api/v1/accounts/demo/replies")
            XCTAssertEqual(before.json["source"] as? String, "config")
            let keywords = (before.json["rules"] as? [String: Any])?["keywords"] as? [[String: Any]]
            XCTAssertEqual(keywords?.first?["keyword"] as? String, "hello")

            let bad: [(String, String)] = [
                (#"{"keywords":[{"match":"regex","keyword":"(a+","reply":{"type":"text","text":"x"}}]}"#, "keywords[0].keyword: missing ')'"),
                (#"{"welcome":{"type":"voice","mediaId":"x"}}"#, "welcome.type: unknown type 'voice'"),
                (#"{"menu":{"K":{"type":"text","text":""}}}"#, "menu.K.text: 1 to 2048 bytes"),
                (#"{"keywords":[{"match":"exact","keyword":"a","reply":{"type":"news","articles":[{"title":"a","url":"https://e.com"},{"title":"b","url":"https://e.com"}]}}]}"#,
                    "keywords[0].reply.articles: 1 to 1 article"),
                (#"{"keywords":[{"match":"fuzzy","keyword":"a","reply":{"type":"text","text":"x"}}]}"#, "keywords[0].match: 'fuzzy' is not exact, prefix, contains or regex"),
            ]
            for (body, message) in bad {
                let r = try await client.send(.put, "/api/v1/accounts/demo/replies", json: body)
                XCTAssertEqual(r.status, .badRequest, body)
                let text = ((r.json["error"] as? [String: Any])?["message"] as? String) ?? ""
                XCTAssertTrue(text.hasPrefix(message), "\(body): \(text)")
            }
            let stored = try await h.redis.send("EXISTS", Keys.replyRules(account: "demo")).int
            XCTAssertEqual(stored, 0, "nothing stored")
            let nobody = try await client.get("/api/v1/accounts/nobody/replies")
            XCTAssertEqual(nobody.status, .notFound)

            let put = try await client.send(.put, "/api/v1/accounts/demo/replies", json: #"{"default":{"type":"text","text":"only this"}}"#)
            XCTAssertEqual(put.json["source"] as? String, "stored")
            let hello = try await client.callback(try Self.text(h, "demo", from: "oX", "hello"))
            XCTAssertEqual(try Self.reply(hello, account: h.config.account("demo")!)["Content"], "only this", "stored rules replace the config file's")
            let reset = try await client.send(.delete, "/api/v1/accounts/demo/replies", json: "")
            XCTAssertEqual(reset.json["source"] as? String, "config")
            let again = try await client.callback(try Self.text(h, "demo", from: "oX", "hello"))
            XCTAssertEqual(try Self.reply(again, account: h.config.account("demo")!)["Content"], "Hi ]]> there")
        }
    }

    func test_menu_isCheckedAgainstWeChatsLimits_thenPublished() async throws {
        let (h, fakes) = try await Harness.connectedToWeChat()
        let appId = h.config.account("demo")!.appId
        try await h.test { client in
            let bad: [(String, String)] = [
                (#"{"button":[{"type":"click","name":"a","key":"1"},{"type":"click","name":"b","key":"2"},{"type":"click","name":"c","key":"3"},{"type":"click","name":"d","key":"4"}]}"#,
                    "button: a menu has 1 to 3 top-level buttons (4 given)"),
                (#"{"button":[{"type":"click","name":"今日歌曲今日歌曲","key":"K"}]}"#, #"button[0] "今日歌曲今日歌曲": name is 1 to 16 bytes"#),
                (#"{"button":[{"name":"More","sub_button":[{"type":"view","name":"Search","url":"ftp://x"}]}]}"#,
                    #"button[0].sub_button[0] "Search": view needs an http(s) url"#),
                (#"{"button":[{"name":"More","sub_button":[{"type":"click","name":"1","key":"a"},{"type":"click","name":"2","key":"a"},{"type":"click","name":"3","key":"a"},{"type":"click","name":"4","key":"a"},{"type":"click","name":"5","key":"a"},{"type":"click","name":"6","key":"a"}]}]}"#,
                    #"button[0] "More": at most 5 sub-buttons (6 given)"#),
                (#"{"button":[{"type":"hover","name":"x"}]}"#, #"button[0] "x": unknown type 'hover'"#),
                (#"{"button":[{"type":"miniprogram","name":"Shop","url":"https://e.com"}]}"#, #"button[0] "Shop": miniprogram needs the mini-program's appid"#),
            ]
            for (body, message) in bad {
                let r = try await client.send(.put, "/api/v1/accounts/demo/menu", json: body)
                XCTAssertEqual(r.errorCode, "invalid_menu", body)
                let text = ((r.json["error"] as? [String: Any])?["message"] as? String) ?? ""
                XCTAssertTrue(text.hasPrefix(message), "\(body): \(text)")
            }
            XCTAssertEqual(fakes.ledger.calls("wechat.menu.create"), 0, "nothing invalid reaches WeChat")
            let none = try await client.get("/api/v1/accounts/demo/menu")
            XCTAssertEqual(none.errorCode, "no_menu")

            let menu = #"{"button":[{"type":"click","name":"展会地图","key":"V1001_MAP"},{"name":"More","sub_button":[{"type":"view","name":"Register","url":"https://expo.example.com/r"},{"type":"miniprogram","name":"Shop","url":"https://expo.example.com","appid":"wx286b93c14bbf93aa","pagepath":"pages/index"}]}]}"#
            let ok = try await client.send(.put, "/api/v1/accounts/demo/menu", json: menu)
            XCTAssertEqual(ok.status, .ok, ok.text)
            let published = try XCTUnwrap(fakes.wechat.menu(appId: appId))
            let sent = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(published.utf8)) as? [String: Any])
            let buttons = sent["button"] as? [[String: Any]]
            XCTAssertEqual(buttons?.first?["key"] as? String, "V1001_MAP")
            XCTAssertEqual((buttons?.last?["sub_button"] as? [[String: Any]])?.last?["pagepath"] as? String, "pages/index")
            XCTAssertNil(buttons?.first?["sub_button"], "absent fields are left out, as WeChat expects")
            let shown = try await client.get("/api/v1/accounts/demo/menu")
            XCTAssertEqual((shown.json["button"] as? [[String: Any]])?.count, 2)

            fakes.ledger.inject("wechat.menu.create", FakeAnswer(json: #"{"errcode":40055,"errmsg":"invalid button url domain"}"#))
            let refused = try await client.send(.put, "/api/v1/accounts/demo/menu", json: menu)
            XCTAssertEqual(refused.status, .badGateway)
            XCTAssertTrue(((refused.json["error"] as? [String: Any])?["message"] as? String ?? "").contains("40055"))
            let corp = try await client.get("/api/v1/accounts/corp/menu")
            XCTAssertEqual(corp.errorCode, "wrong_platform")
        }
        await fakes.stop()
    }
}
