import App
import FakeProviders
import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Outbound
import Store
import XCTest

/// Replies to Douyin private messages through `douyin-im` to the loopback fake: a message in opens a
/// 24 h window; the reply names that message and its conversation, with the enterprise account's
/// business token (refreshed with its refresh token when it expires); outside the window nothing goes.
final class DouyinReplyTests: XCTestCase {
    static let user = "_000f9pF8lTroNtA9pfLjPohf1qIUzLdiWRs"
    static let conversation = "@4F8A0vXKXctkaiPz"

    func rig(refreshExpiresIn: Int = 2_592_000) async throws -> OutboundEngineTests.Rig {
        let fakes = try await ProviderFakes.start(douyinRefreshExpiresIn: refreshExpiresIn)
        let h = try Harness { config in
            config.outbound.channels = ["wechat": "sandbox-wechat-template", "sms": "sandbox-sms", "email": "sandbox-email", "douyin": "douyin-im"]
            config.douyin.accounts = [
                .init(
                    id: "dy", clientKey: ProviderFakes.douyinClientKey, clientSecret: DouyinWebhookTests.secret, openId: ProviderFakes.douyinAccountOpenId,
                    refreshToken: ProviderFakes.douyinRefreshToken)
            ]
        }
        h.adapterEnvironment = fakes.environment
        return OutboundEngineTests.Rig(h: h, fakes: fakes, store: MessageStore(redis: h.redis))
    }

    func test_aReply_answersTheLastMessage_insideTheWindow_withARefreshedToken() async throws {
        let rig = try await rig()
        let engine = try rig.startEngine()
        defer { engine.cancel() }
        let douyin = rig.fakes.douyin
        try await rig.h.test { client in
            // The customer writes: the window opens, and the fake knows the message too.
            let now = rig.h.now / 1000
            let inbound = try await DouyinWebhookTests.post(
                client, DouyinWebhookTests.message(from: Self.user, text: "展位在哪？", id: "7173823391384455436", atSeconds: now, clientKey: ProviderFakes.douyinClientKey))
            XCTAssertEqual(inbound.status, .ok, inbound.text)
            // (The fake keeps Douyin's own time; the gateway runs on the test clock.)
            douyin.received(user: Self.user, msgId: "7173823391384455436", conversation: Self.conversation, atMs: Int64(Date().timeIntervalSince1970 * 1000))
            let customer = try await CustomerStore(redis: rig.h.redis, config: rig.h.config).lookup(Identity(kind: .douyin, account: "dy", value: Self.user))
            let id = try XCTUnwrap(customer)

            let first = try await OutboundEngineTests.post(client, #"{"channel":"douyin","account":"dy","customerId":"\#(id)","text":"展位在 A12，欢迎！"}"#)
            XCTAssertEqual(first.status, .accepted, "\(first.body)")
            _ = try await rig.waitFor(first.id, [.sent])
            XCTAssertEqual(douyin.sent, [.init(to: Self.user, text: "展位在 A12，欢迎！", msgId: "7173823391384455436", conversationId: Self.conversation)])
            XCTAssertEqual(douyin.tokensIssued, 1)

            // The token expires: refreshed once with the refresh token, the reply goes.
            douyin.expireToken()
            let second = try await OutboundEngineTests.post(client, #"{"channel":"douyin","account":"dy","to":"\#(Self.user)","text":"Anything else?"}"#)
            _ = try await rig.waitFor(second.id, [.sent])
            XCTAssertEqual(douyin.sent.count, 2)
            XCTAssertEqual(douyin.refused[2190008], 1, "the expired token was refused once")
            XCTAssertEqual(douyin.tokensIssued, 2)

            // A marketer replies from the customer's page in the console.
            let mara = try await ConsoleActionTests.signIn(client, "mara", role: "marketer")
            let page = try await client.execute(uri: "/console/customers/\(id)", method: .get, headers: [.cookie: mara.cookie]).text
            XCTAssertTrue(page.contains(#"<input type="hidden" name="channel" value="douyin">"#), page)
            XCTAssertTrue(page.contains("展位在哪？"), "the conversation is shown")
            let form = "csrf=\(mara.csrf)&_method=POST&_path=%2Fapi%2Fv1%2Fmessages&_back=%2Fconsole%2Fcustomers%2F\(id)&channel=douyin&account=dy&customerId=\(id)&text=See+you+there"
            let acted = try await ConsoleActionTests.act(client, mara.cookie, form, json: true)
            XCTAssertEqual(acted.status, .ok, acted.text)
            try await CRMSyncTests.eventually("the console's reply sent") { douyin.sent.count == 3 }
            XCTAssertEqual(douyin.sent.last?.text, "See you there")

            // 25 hours later the window has closed: skipped, nothing sent.
            let stale = Int64(rig.h.now) - 25 * 3_600_000
            _ = try await rig.h.redis.send("SET", Keys.session(account: "dy", openid: Self.user), "\(stale) \(id)")
            let late = try await OutboundEngineTests.post(client, #"{"channel":"douyin","account":"dy","customerId":"\#(id)","text":"Still there?"}"#)
            let skipped = try await rig.waitFor(late.id, [.skipped])
            XCTAssertEqual(skipped.reason, "outside_session_window")
            // Someone who never wrote: no window either.
            let cold = try await OutboundEngineTests.post(client, #"{"channel":"douyin","account":"dy","to":"_000neverwrote","text":"Hi"}"#)
            let coldSkipped = try await rig.waitFor(cold.id, [.skipped])
            XCTAssertEqual(coldSkipped.reason, "outside_session_window")
            XCTAssertEqual(douyin.sent.count, 3)
            // The page no longer offers a reply once the window has closed.
            let closed = try await client.execute(uri: "/console/customers/\(id)", method: .get, headers: [.cookie: mara.cookie]).text
            XCTAssertFalse(closed.contains(#"name="channel" value="douyin""#), "no reply box outside the window")

            // Bad requests: an unknown Douyin account, a Douyin open_id that is not one.
            let unknown = try await OutboundEngineTests.post(client, #"{"channel":"douyin","account":"nope","to":"\#(Self.user)","text":"Hi"}"#)
            XCTAssertEqual(unknown.status, .badRequest)
            XCTAssertEqual((unknown.body["error"] as? [String: Any])?["code"] as? String, "unknown_account")
            let badTo = try await OutboundEngineTests.post(client, #"{"channel":"douyin","account":"dy","to":"not an id","text":"Hi"}"#)
            XCTAssertEqual((badTo.body["error"] as? [String: Any])?["code"] as? String, "invalid_recipient")

            // A campaign to the account's Douyin audience: its account must be a Douyin account.
            let campaign = try await client.send(
                .post, "/api/v1/campaigns", json: #"{"name":"dy-followup","audience":"account:dy","channels":[{"channel":"douyin","account":"dy","text":"Thanks for writing"}]}"#)
            XCTAssertEqual(campaign.status, .created, campaign.text)
            let wrong = try await client.send(
                .post, "/api/v1/campaigns", json: #"{"name":"dy-wrong","audience":"account:dy","channels":[{"channel":"douyin","account":"demo","text":"Hi"}]}"#)
            XCTAssertEqual(wrong.status, .badRequest, wrong.text)
            XCTAssertEqual(wrong.value?.lookup("error.code")?.scalarText, "unknown_account")
        }
        await rig.fakes.stop()
    }

    /// A refresh token with two days left is renewed at the next refresh (30 days more), kept in Redis,
    /// and the renewed one is what the next refresh uses (Douyin refuses the old one from then on).
    func test_aRefreshTokenNearItsEnd_isRenewed_andTheRenewedOneIsUsed() async throws {
        let rig = try await rig(refreshExpiresIn: 2 * 86_400)
        let engine = try rig.startEngine()
        defer { engine.cancel() }
        let douyin = rig.fakes.douyin
        try await rig.h.test { client in
            let now = rig.h.now / 1000
            _ = try await DouyinWebhookTests.post(
                client, DouyinWebhookTests.message(from: Self.user, text: "hi", id: "7173823391384455999", atSeconds: now, clientKey: ProviderFakes.douyinClientKey))
            douyin.received(user: Self.user, msgId: "7173823391384455999", conversation: Self.conversation, atMs: Int64(Date().timeIntervalSince1970 * 1000))
            let first = try await OutboundEngineTests.post(client, #"{"channel":"douyin","account":"dy","to":"\#(Self.user)","text":"one"}"#)
            _ = try await rig.waitFor(first.id, [.sent])
            XCTAssertEqual(douyin.renewals, 1, "two days left: renewed")
            let stored = try await rig.h.redis.send("HGET", Keys.accessTokenRefresh(account: "dy"), "token").string
            XCTAssertEqual(stored, douyin.currentRefreshToken, "the renewed token is kept for every process")
            XCTAssertNotEqual(stored, ProviderFakes.douyinRefreshToken)
            // Operators see when it runs out.
            let adapters = try await client.get("/api/v1/adapters")
            let tokens = (adapters.json["accessTokens"] as? [[String: Any]]) ?? []
            let dy = try XCTUnwrap(tokens.first { $0["account"] as? String == "dy" }, adapters.text)
            XCTAssertEqual(dy["platform"] as? String, "douyin")
            let iso = ISO8601DateFormatter()
            iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            let expires = try XCTUnwrap((dy["refreshTokenExpiresAt"] as? String).flatMap { iso.date(from: $0) }, "\(dy)")
            let left = expires.timeIntervalSince1970 - Double(rig.h.now) / 1000  // the gateway's clock
            XCTAssertEqual(left, 30 * 86_400, accuracy: 60, "the renewed token's 30 days")
            let mara = try await ConsoleActionTests.signIn(client, "mara", role: "marketer")
            let dashboard = try await client.execute(uri: "/console", method: .get, headers: [.cookie: mara.cookie]).text
            XCTAssertTrue(dashboard.contains("Douyin authorization of <strong>dy</strong>"), dashboard)
            XCTAssertFalse(dashboard.contains("authorize the app again"), "30 days left: no warning")

            // The access token expires: the refresh must use the renewed token (the configured one is refused now).
            douyin.expireToken()
            let second = try await OutboundEngineTests.post(client, #"{"channel":"douyin","account":"dy","to":"\#(Self.user)","text":"two"}"#)
            _ = try await rig.waitFor(second.id, [.sent])
            XCTAssertEqual(douyin.tokensIssued, 2)
            XCTAssertEqual(douyin.sent.map(\.text), ["one", "two"])

            // The account authorizes the app again and the operator configures the new refresh token: it wins
            // over the renewed one kept in Redis (which Douyin now refuses).
            engine.cancel()
            douyin.reauthorize(refreshToken: "rft.reauthorized")
            douyin.expireToken()
            var config = rig.h.config
            config.douyin.accounts[0].refreshToken = "rft.reauthorized"
            let again = makeOutbound(
                config: config, redis: rig.h.redis, adapters: try loadAdapters(config: config, environment: rig.h.adapterEnvironment), clock: rig.h.clock
            ).engine
            let second2 = Task { try await again.run() }
            defer { second2.cancel() }
            let third = try await OutboundEngineTests.post(client, #"{"channel":"douyin","account":"dy","to":"\#(Self.user)","text":"three"}"#)
            _ = try await rig.waitFor(third.id, [.sent])
            XCTAssertEqual(douyin.sent.map(\.text), ["one", "two", "three"])
        }
        await rig.fakes.stop()
    }
}
