import FakeProviders
import Foundation
import GatewayCore
import HTTPTransport
import Outbound
import RedisClient
import Store
import TestSupport
import XCTest

final class AccessTokenTests: XCTestCase {
    let clock: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }
    let credentials = [AccessTokenManager.Credentials(account: "demo", appId: ProviderFakes.wechatAppId, secret: ProviderFakes.wechatSecret)]

    func manager(_ redis: RedisPool, _ fakes: ProviderFakes, settings: AccessTokenManager.Settings = .init()) -> AccessTokenManager {
        AccessTokenManager(redis: redis, baseURL: fakes.baseURL, accounts: credentials, settings: settings, clock: clock)
    }

    func test_twoProcesses_manyConcurrentCallers_fetchOnce() async throws {
        let server = try RedisTestServer()
        let fakes = try await ProviderFakes.start()
        let (redis1, redis2) = (RedisPool(server.configuration), RedisPool(server.configuration))
        let (m1, m2) = (manager(redis1, fakes), manager(redis2, fakes))
        let tokens = try await withThrowingTaskGroup(of: String.self) { group in
            for i in 0..<40 { group.addTask { try await (i % 2 == 0 ? m1 : m2).token(for: "demo") } }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        XCTAssertEqual(tokens.count, 1, "every caller in both processes got the same token")
        XCTAssertEqual(fakes.wechat.tokenFetches(ProviderFakes.wechatAppId), 1, "one fetch for 40 callers in two processes")
        let counted = try await m1.fetchesToday("demo")
        XCTAssertEqual(counted, 1)
        await fakes.stop()
        redis1.shutdown()
        redis2.shutdown()
    }

    func test_invalidate_onlyDropsTheTokenThatFailed() async throws {
        let server = try RedisTestServer()
        let fakes = try await ProviderFakes.start()
        let (redis1, redis2) = (RedisPool(server.configuration), RedisPool(server.configuration))
        let (m1, m2) = (manager(redis1, fakes), manager(redis2, fakes))
        let a = try await m1.token(for: "demo")
        // Process 2 sees A refused first and refreshes (force_refresh, since A is stale).
        await m2.invalidate(account: "demo", failedToken: a)
        let b = try await m2.token(for: "demo")
        XCTAssertNotEqual(a, b)
        // Process 1 reports the same old failure later: B must survive.
        await m1.invalidate(account: "demo", failedToken: a)
        let again = try await m1.token(for: "demo")
        XCTAssertEqual(again, b, "process 1 picks up B instead of refreshing again")
        XCTAssertEqual(fakes.wechat.tokenFetches(ProviderFakes.wechatAppId), 2)
        await fakes.stop()
        redis1.shutdown()
        redis2.shutdown()
    }

    /// WeChat sends one message per openid + client_msg_id within 10 minutes and refuses a repeat
    /// ("clientmsgid exist"); a resend after a crash is then recorded as sent, with the first msgid.
    func test_repeatedClientMsgId_isRecognisedAsAlreadySent() async throws {
        let server = try RedisTestServer()
        let fakes = try await ProviderFakes.start()
        let redis = RedisPool(server.configuration)
        let catalog = try AdapterCatalog.load(directory: AdapterFixtureTests.adaptersDir, enabled: ["wechat-template"], environment: fakes.environment)
        let sender = AdapterSender(sandbox: SandboxOutbox(redis: redis, maxLen: 100), tokens: manager(redis, fakes), publicURL: "https://gw", clock: clock)
        let payload = OutboundPayload(messageId: "m1", to: "oF1", account: "demo", template: "T", variables: ["thing1": .string("x")])
        let first = await sender.send(payload, via: catalog["wechat-template"]!)
        let again = await sender.send(payload, via: catalog["wechat-template"]!)
        guard case .accepted(let id1?) = first, case .accepted(let id2?) = again else { return XCTFail("\(first) \(again)") }
        XCTAssertEqual(id1, id2, "the repeat carries the first message's msgid")
        XCTAssertEqual(fakes.ledger.deliveries("wechat.template").count, 1)
        var other = payload
        other.to = "oF2"
        guard case .accepted = await sender.send(other, via: catalog["wechat-template"]!) else { return XCTFail("another openid is another message") }
        XCTAssertEqual(fakes.ledger.deliveries("wechat.template").count, 2)
        await fakes.stop()
        redis.shutdown()
    }

    func test_refusedToken_isRefreshedAndTheSendRetriedOnce() async throws {
        let server = try RedisTestServer()
        let fakes = try await ProviderFakes.start()
        let redis = RedisPool(server.configuration)
        let tokens = manager(redis, fakes)
        let catalog = try AdapterCatalog.load(directory: AdapterFixtureTests.adaptersDir, enabled: ["wechat-template"], environment: fakes.environment)
        let sender = AdapterSender(sandbox: SandboxOutbox(redis: redis, maxLen: 100), tokens: tokens, publicURL: "https://gw", clock: clock)
        let payload = OutboundPayload(messageId: "m1", to: "oF1", account: "demo", template: "T", variables: ["thing1": .string("x")])
        let first = await sender.send(payload, via: catalog["wechat-template"]!)
        guard case .accepted = first else { return XCTFail("\(first)") }

        fakes.wechat.expireTokens()  // the cached token now gets 42001
        // Another message (the same client_msg_id would be dropped by WeChat's own dedup).
        var next = payload
        next.messageId = "m2"
        let second = await sender.send(next, via: catalog["wechat-template"]!)
        guard case .accepted = second else { return XCTFail("\(second)") }
        XCTAssertEqual(fakes.ledger.calls("wechat.template"), 3, "send, refused send, retried send")
        XCTAssertEqual(fakes.ledger.deliveries("wechat.template").count, 2)
        XCTAssertEqual(fakes.wechat.tokenFetches(ProviderFakes.wechatAppId), 2, "one refresh for the refusal")

        // A token refused twice in a row is not retried in a loop.
        fakes.ledger.inject("wechat.template", FakeAnswer(json: #"{"errcode":40001,"errmsg":"invalid credential"}"#),
            FakeAnswer(json: #"{"errcode":40001,"errmsg":"invalid credential"}"#))
        let third = await sender.send(payload, via: catalog["wechat-template"]!)
        guard case .failed(let f) = third else { return XCTFail("\(third)") }
        XCTAssertEqual(f.errorClass, .retry)
        XCTAssertEqual(fakes.ledger.calls("wechat.template"), 5)
        await fakes.stop()
        redis.shutdown()
    }

    func test_redisOutage_doesNotTurnIntoAStampede() async throws {
        let server = try RedisTestServer()
        let fakes = try await ProviderFakes.start()
        var settings = AccessTokenManager.Settings()
        settings.localTTLms = 0  // look at Redis on every call
        let warm = manager(RedisPool(server.configuration), fakes, settings: settings)
        let cold = manager(RedisPool(server.configuration), fakes, settings: settings)
        let token = try await warm.token(for: "demo")
        server.stop()

        func wave(_ m: AccessTokenManager) async -> [Result<String, any Error>] {
            await withTaskGroup(of: Result<String, any Error>.self) { group in
                for _ in 0..<30 { group.addTask { do { return .success(try await m.token(for: "demo")) } catch { return .failure(error) } } }
                return await group.reduce(into: []) { $0.append($1) }
            }
        }
        let warmResults = await wave(warm)
        XCTAssertEqual(warmResults.compactMap { try? $0.get() }, Array(repeating: token, count: 30), "a process with a token keeps using it")
        XCTAssertEqual(fakes.wechat.tokenFetches(ProviderFakes.wechatAppId), 1)

        let coldResults = await wave(cold)
        XCTAssertEqual(coldResults.compactMap { try? $0.get() }.count, 30)
        XCTAssertEqual(fakes.wechat.tokenFetches(ProviderFakes.wechatAppId), 2, "a process without one fetches once, not 30 times")
        _ = await wave(cold)
        XCTAssertEqual(fakes.wechat.tokenFetches(ProviderFakes.wechatAppId), 2)
        await fakes.stop()
    }

    func test_dailyBudget_stopsFetching() async throws {
        let server = try RedisTestServer()
        let fakes = try await ProviderFakes.start()
        let redis = RedisPool(server.configuration)
        var settings = AccessTokenManager.Settings()
        settings.dailyBudget = 2
        let m = manager(redis, fakes, settings: settings)
        var token = try await m.token(for: "demo")
        await m.invalidate(account: "demo", failedToken: token)
        token = try await m.token(for: "demo")
        await m.invalidate(account: "demo", failedToken: token)
        do {
            _ = try await m.token(for: "demo")
            XCTFail("a third fetch is over the budget")
        } catch {
            XCTAssertEqual(error as? AccessTokenManager.TokenError, .budgetExhausted("demo"))
        }
        XCTAssertEqual(fakes.wechat.tokenFetches(ProviderFakes.wechatAppId), 2)
        let counted = try await m.fetchesToday("demo")
        XCTAssertEqual(counted, 2)
        await fakes.stop()
        redis.shutdown()
    }
}
