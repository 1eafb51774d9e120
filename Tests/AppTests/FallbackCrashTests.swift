import FakeProviders
import Foundation
import GatewayCore
import HTTPTransport
import RedisClient
import Store
import TestSupport
import XCTest

/// Fallback at send time through a real gateway process, killed with SIGKILL twice while messages
/// move from channel to channel. 600 recipients: a third WeChat takes; a third WeChat refuses (43004,
/// unsubscribed) and SMS takes; a third WeChat refuses, Twilio refuses (21610, replied STOP) and email
/// takes. Counted at the fakes: nobody gets two messages, everyone gets the one on the channel they
/// can take, except messages whose provider call was cut by a kill on a provider with neither its own
/// dedup nor a lookup (email): those are dead-lettered as `outcome_unknown`, never resent blindly (SMS
/// in doubt is settled by asking Twilio).
final class FallbackCrashTests: XCTestCase {
    static let token = "fallback-admin-token-0123456789"
    static let n = 600

    static func openid(_ i: Int) -> String { String(format: "oFB%05d", i) }
    static func phone(_ i: Int) -> String { String(format: "+86139%08d", i) }
    static func email(_ i: Int) -> String { String(format: "fb%05d@example.com", i) }

    func test_fallbackWechatToSMSToEmail_killDashNineTwice_eachRecipientAtMostOnce() async throws {
        let binary = try GatewayProcess.binary()
        let target = try CrashRedis()
        let redis = target.pool
        let fakes = try await ProviderFakes.start(twilioDelayMs: 5)
        let appId = "wxfallback000001"
        fakes.wechat.addAccount(appId: appId, secret: "fallback-app-secret")
        let n = Self.n
        for i in 0..<n where i % 3 != 0 {
            fakes.ledger.refuse("wechat.template", to: Self.openid(i), FakeAnswer(json: #"{"errcode":43004,"errmsg":"require subscribe rid: 1"}"#))
        }
        for i in 0..<n where i % 3 == 2 {
            fakes.ledger.refuse(
                "twilio.messages", to: Self.phone(i), FakeAnswer(status: 400, json: #"{"code":21610,"message":"Attempt to send to unsubscribed recipient","status":400}"#))
        }

        let work = target.directory.appendingPathComponent("gateway")
        let adapters = try GatewayProcess.adapters(in: work, edits: [
            "twilio-sms.yaml": ("per_second: 1\n  burst: 1", "per_second: 400\n  burst: 50"),
        ])
        let port = try LocalProcess.freePort()
        let config = work.appendingPathComponent("gateway.yaml")
        try """
            server: { host: 127.0.0.1, port: \(port) }
            redis: { \(target.locator), connections: 4, commandTimeoutMs: 1000 }
            admin: { token: \(Self.token) }
            outbound:
              adaptersDir: \(adapters.path)
              channels: { wechat: wechat-template, sms: twilio-sms, email: sendgrid-edm }
              adapters: []
              concurrency: 8
              claimIdleSeconds: 2
              linkSecret: fallback-link-secret-0123456789
              publicURL: http://127.0.0.1:\(port)
            \(GatewayProcess.privacyYAML)
            accounts:
              - { id: demo, platform: wechat, appId: \(appId), token: fbtoken, appSecret: fallback-app-secret, mode: plain }
            """.write(to: config, atomically: true, encoding: .utf8)
        var env = fakes.environment
        env["SCRM_CONFIG"] = config.path
        env["SCRM_LOG_LEVEL"] = "error"

        let customers = CustomerStore(redis: redis, config: GatewayConfig())
        let rows = (0..<n).map { i in
            CustomerStore.ImportRow(
                identities: [
                    Identity(kind: .openid, account: "demo", value: Self.openid(i)), Identity(kind: .phone, value: Self.phone(i)),
                    Identity(kind: .email, value: Self.email(i)),
                ], tags: ["expo-2026"])
        }
        _ = try await customers.importBatch(rows, nowMs: Int64(Date().timeIntervalSince1970 * 1000))

        var gateway = try LocalProcess.spawn([binary], environment: env)
        defer { LocalProcess.terminate(gateway) }
        try LocalProcess.waitUntil(port: port, accepting: true, what: "scrm-gateway")
        let http = HTTPTransport()
        defer { http.shutdown() }
        func api(_ method: String, _ path: String, _ body: String) async throws -> [String: Any] {
            try await GatewayProcess.admin(http, port: port, token: Self.token, method, path, body)
        }
        let created = try await api(
            "POST", "/api/v1/campaigns",
            #"""
            {"name":"fallback crash","audience":"expo-2026","channels":[
              {"channel":"wechat","account":"demo","template":"TPL","data":{"first":"Expo 2026"}},
              {"channel":"sms","text":"Expo 2026: your seat is waiting"},
              {"channel":"email","subject":"Expo 2026","text":"Your seat is waiting"}]}
            """#)
        let id = try XCTUnwrap(created["id"] as? String, "\(created)")
        _ = try await api("POST", "/api/v1/campaigns/\(id)/start", "{}")

        func fellBack() async -> Int { (try? await redis.send("HGET", Keys.campaignStats(id), "fellBack").string).flatMap { Int($0 ?? "") } ?? 0 }
        func waitFor(_ what: String, seconds: Double = 90, _ condition: () async -> Bool) async throws {
            try await GatewayProcess.waitFor(what, seconds: seconds, condition)
        }
        // 600 fallbacks in all (400 to SMS, 200 on to email): killed at 150 and at 420.
        var killedAt = [Int]()
        for mark in [150, 420] {
            try await waitFor("\(mark) fallbacks") { await fellBack() >= mark }
            kill(gateway, SIGKILL)
            var status: Int32 = 0
            waitpid(gateway, &status, 0)
            killedAt.append(await fellBack())
            gateway = try LocalProcess.spawn([binary], environment: env)
        }

        var state = ""
        let end = Date().addingTimeInterval(120)
        while Date() < end {
            state = (try? await redis.send("HGET", Keys.campaign(id), "state").string ?? "") ?? ""
            if state == "completed" { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        let stats = try await redis.send("HGETALL", Keys.campaignStats(id)).dictionary
        XCTAssertEqual(state, "completed", "stats: \(stats)")

        // Who got what, counted at the providers.
        var got = [Int: [String]]()
        for d in fakes.ledger.deliveries {
            let i: Int?
            switch d.provider {
            case "wechat.template": i = Int(d.to.dropFirst(3))
            case "twilio": i = Int(d.to.dropFirst(6))
            case "sendgrid": i = Int(d.to.dropFirst(2).prefix(5))
            default: i = nil
            }
            got[try XCTUnwrap(i, "\(d.provider) \(d.to)"), default: []].append(d.provider)
        }
        let expected = ["wechat.template", "twilio", "sendgrid"]
        let twice = got.filter { $0.value.count > 1 }
        XCTAssertEqual(twice.count, 0, "nobody gets two messages: \(twice.prefix(5))")
        let wrong = got.filter { $0.value.first != expected[$0.key % 3] }
        XCTAssertEqual(wrong.count, 0, "each on the channel they can take: \(wrong.prefix(5))")

        // Missing ones are exactly the messages a kill left in doubt on SMS or email (dead-lettered, replayable).
        let letters = try await redis.send(["XRANGE", Keys.deadLetters, "-", "+"]).array ?? []
        let unknown = letters.compactMap { e -> String? in
            guard let f = e.array?.last?.dictionary, f["reason"] == "outcome_unknown" else { return nil }
            return f["channel"]
        }
        let missing = (0..<n).filter { got[$0] == nil }
        XCTAssertLessThanOrEqual(missing.count, unknown.count, "only in-doubt messages may be missing: \(missing.prefix(10))")
        XCTAssertLessThanOrEqual(unknown.count, 2 * 2 * 8, "at most the calls in flight at two kills (two channels, concurrency 8)")
        XCTAssertFalse(unknown.contains("wechat"), "WeChat deduplicates: a call in doubt is resent, never dead-lettered")

        // The counters agree with the fakes.
        XCTAssertEqual(stats["open"], "0")
        XCTAssertEqual(Int(stats["sent"] ?? "") ?? 0, n - unknown.count, "\(stats)")
        XCTAssertEqual(stats["fellBackTo:sms"], String(n / 3 * 2), "every WeChat refusal moved to SMS")
        let toEmail = Int(stats["fellBackTo:email"] ?? "") ?? 0
        XCTAssertTrue((n / 3 - unknown.filter { $0 == "sms" }.count...n / 3).contains(toEmail), "every SMS refusal moved to email: \(toEmail)")
        XCTAssertEqual(stats["ch:wechat:sent"], String(n / 3))
        print("fallback crash test: \(n) recipients, kill -9 at \(killedAt) fallbacks; RESULT wechat=\(got.values.filter { $0 == ["wechat.template"] }.count) sms=\(got.values.filter { $0 == ["twilio"] }.count) email=\(got.values.filter { $0 == ["sendgrid"] }.count) twice=\(twice.count) missing=\(missing.count) outcome_unknown=\(unknown.count) wechat_calls=\(fakes.ledger.calls("wechat.template")) twilio_calls=\(fakes.ledger.calls("twilio.messages"))")
        await fakes.stop()
    }
}
