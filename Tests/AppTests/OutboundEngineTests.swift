import App
import FakeProviders
import Foundation
import GatewayCore
import Hummingbird
import HummingbirdTesting
import Outbound
import RedisClient
import Synchronization
import Store
import XCTest

/// `POST /api/v1/messages` through the senders to loopback fake providers, on a real Redis.
final class OutboundEngineTests: XCTestCase {
    struct Rig: Sendable {
        let h: Harness
        let fakes: ProviderFakes
        let store: MessageStore
        let linkSecret = "test-link-secret-0123456789"

        /// Starts the senders; cancel the task to stop them.
        func startEngine() throws -> Task<Void, any Error> {
            let engine = makeOutbound(
                config: h.config, redis: h.redis, adapters: try loadAdapters(config: h.config, environment: h.adapterEnvironment), clock: h.clock
            ).engine
            return Task { try await engine.run() }
        }

        func waitFor(_ id: String, _ states: Set<OutboundMessage.State>, seconds: Double = 10) async throws -> OutboundMessage {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if let m = try await store.get(id), states.contains(m.state) { return m }
                try await Task.sleep(for: .milliseconds(20))
            }
            let m = try await store.get(id)
            XCTFail("message \(id) is \(m?.state.rawValue ?? "missing") (\(m?.reason ?? ""); \(m?.lastError ?? "")), not \(states)")
            return try XCTUnwrap(m)
        }
    }

    func rig(claimIdleSeconds: Int = 60, concurrency: Int = 8, adaptersDir: String? = nil) async throws -> Rig {
        let fakes = try await ProviderFakes.start()
        let h = try Harness { config in
            if let adaptersDir { config.outbound.adaptersDir = adaptersDir }
            config.outbound.channels = ["wechat": "wechat-template", "sms": "twilio-sms", "email": "sendgrid-edm"]
            config.outbound.extraAdapters = ["sandbox-sms"]
            config.outbound.linkSecret = "test-link-secret-0123456789"
            config.outbound.publicURL = "https://gw.example.com"
            config.outbound.claimIdleSeconds = claimIdleSeconds
            config.outbound.concurrency = concurrency
            if let i = config.accounts.firstIndex(where: { $0.id == "demo" }) { config.accounts[i].appSecret = "demo-app-secret" }
        }
        h.adapterEnvironment = fakes.environment
        fakes.wechat.addAccount(appId: h.config.account("demo")!.appId, secret: "demo-app-secret")
        return Rig(h: h, fakes: fakes, store: MessageStore(redis: h.redis))
    }

    static func post(_ client: some TestClientProtocol, _ json: String) async throws -> (status: HTTPResponse.Status, id: String, body: [String: Any]) {
        let r = try await client.send(.post, "/api/v1/messages", json: json)
        return (r.status, r.json["id"] as? String ?? "", r.json)
    }

    /// `concurrency: 0` is a process that only accepts: its senders stop at once (they used to spin).
    func test_concurrencyZero_acceptsButNeverSends() async throws {
        let rig = try await rig(concurrency: 0)
        let engine = try rig.startEngine()
        let started = Date()
        try await engine.value
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, "run() returns instead of looping")
        try await rig.h.test { client in
            let r = try await Self.post(client, #"{"channel":"sms","to":"+14155552671","text":"queued only"}"#)
            XCTAssertEqual(r.status, .accepted)
            let m = try await rig.store.get(r.id)
            XCTAssertEqual(m?.state, .queued)
        }
        XCTAssertEqual(rig.fakes.ledger.deliveries.count, 0)
    }

    func test_smsMessage_isQueuedSentAndReadable_andAnIdempotencyKeySendsOnce() async throws {
        let rig = try await rig()
        let engine = try rig.startEngine()
        defer { engine.cancel() }
        try await rig.h.test { client in
            let first = try await Self.post(client, #"{"channel":"sms","to":"+1 415 555 2671","text":"Your code is 4821","idempotencyKey":"otp-1"}"#)
            XCTAssertEqual(first.status, .accepted)
            XCTAssertEqual(first.body["state"] as? String, "queued")
            let again = try await Self.post(client, #"{"channel":"sms","to":"+14155552671","text":"Your code is 4821","idempotencyKey":"otp-1"}"#)
            XCTAssertEqual(again.id, first.id, "the same key is the same message")
            XCTAssertEqual(again.body["duplicate"] as? Bool, true)

            let sent = try await rig.waitFor(first.id, [.sent])
            XCTAssertEqual(sent.attempts, 1)
            let read = try await client.get("/api/v1/messages/\(first.id)")
            XCTAssertEqual(read.json["state"] as? String, "sent")
            XCTAssertEqual(read.json["to"] as? String, "+14155552671", "stored normalised")
            XCTAssertTrue((read.json["providerId"] as? String ?? "").hasPrefix("SM"))
            XCTAssertEqual(rig.fakes.ledger.deliveries("twilio").count, 1)
            XCTAssertEqual(rig.fakes.ledger.deliveries("twilio").first?.body["StatusCallback"], "https://gw.example.com/webhooks/receipts/twilio-sms")

            let missing = try await client.get("/api/v1/messages/01ARZ3NDEKTSV4RRFFQ69G5FAV")
            XCTAssertEqual(missing.status, .notFound)
        }
        await rig.fakes.stop()
    }

    func test_badRequests_areRefusedWithAReason_andStoreNothing() async throws {
        let rig = try await rig()
        try await rig.h.test { client in
            let before = try await rig.h.dbSize()
            let cases: [(String, String)] = [
                (#"{"channel":"fax","to":"+14155552671","text":"x"}"#, "invalid_channel"),
                (#"{"channel":"sms","adapter":"sendgrid-edm","to":"+14155552671","text":"x"}"#, "unknown_adapter"),
                (#"{"channel":"sms","adapter":"aliyun-sms","to":"+14155552671","text":"x"}"#, "unknown_adapter"),
                (#"{"channel":"sms","to":"0415 555","text":"x"}"#, "invalid_recipient"),
                (#"{"channel":"sms","text":"x"}"#, "invalid_recipient"),
                (#"{"channel":"sms","to":"+14155552671","customerId":"01ARZ3NDEKTSV4RRFFQ69G5FAV","text":"x"}"#, "invalid_recipient"),
                (#"{"channel":"email","to":"not-an-address","text":"x"}"#, "invalid_recipient"),
                (#"{"channel":"wechat","to":"oX","template":"T"}"#, "unknown_account"),
                (#"{"channel":"wechat","account":"demo","to":"o X","template":"T"}"#, "invalid_recipient"),
                (#"{"channel":"sms","to":"+14155552671","variables":[1]}"#, "invalid_body"),
                (#"{"channel":"sms","to":"+14155552671","idempotencyKey":""}"#, "invalid_idempotency_key"),
                (#"{"to":"+14155552671"}"#, "invalid_body"),
            ]
            for (json, code) in cases {
                let r = try await client.send(.post, "/api/v1/messages", json: json)
                XCTAssertEqual(r.status, .badRequest, json)
                XCTAssertEqual(r.errorCode, code, json)
            }
            let after = try await rig.h.dbSize()
            XCTAssertEqual(after, before, "nothing stored for refused requests")
        }
        await rig.fakes.stop()
    }

    func test_consentAtSendTime_skipsWithAReason_andOneClickUnsubscribeWorks() async throws {
        let rig = try await rig()
        let engine = try rig.startEngine()
        defer { engine.cancel() }
        let links = try XCTUnwrap(UnsubscribeLinks(secret: rig.linkSecret, publicURL: "https://gw.example.com"))
        try await rig.h.test { client in
            // A follower subscribes, then unsubscribes: a WeChat message to them is skipped.
            let h = rig.h
            for event in ["subscribe", "unsubscribe"] {
                let xml = SampleCallbacks.event(to: "gh", from: "oGone", event: event, createTime: h.nowSeconds)
                _ = try await client.callback(try h.builder("demo").post(xml: xml, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false))
            }
            let found = try await client.get("/api/v1/customers/lookup?account=demo&openid=oGone")
            let customerId = try XCTUnwrap(found.json["id"] as? String)
            let wx = try await Self.post(client, #"{"channel":"wechat","account":"demo","customerId":"\#(customerId)","template":"T","variables":{"a":"1"}}"#)
            let skipped = try await rig.waitFor(wx.id, [.skipped])
            XCTAssertEqual(skipped.reason, "wechat_unsubscribed")

            // A forged token changes nothing; the real one unsubscribes in one POST (GET only asks).
            let forged = try await client.execute(uri: "/u/" + links.token(channel: "email", address: "ana@example.org") + "0", method: .post)
            XCTAssertEqual(forged.status, .notFound)
            let token = links.token(channel: "email", address: "ana@example.org")
            let page = try await client.execute(uri: "/u/\(token)", method: .get)
            XCTAssertEqual(page.status, .ok)
            XCTAssertTrue(page.text.contains("a***@example.org"))
            let beforeClick = try await rig.h.redis.send("EXISTS", AddressSuppression(key: AddressSuppression.devKey).key(channel: "email", address: "ana@example.org")).int
            XCTAssertEqual(beforeClick, 0, "a GET never unsubscribes")
            let click = try await client.execute(
                uri: "/u/\(token)", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
                body: ByteBuffer(string: "List-Unsubscribe=One-Click"))
            XCTAssertEqual(click.status, .ok)

            let marketing = try await Self.post(client, #"{"channel":"email","to":"Ana@Example.org","subject":"Sale","text":"50% off"}"#)
            let receipt = try await Self.post(
                client, #"{"channel":"email","to":"ana@example.org","subject":"Your order","text":"Thanks","transactional":true}"#)
            let skippedMail = try await rig.waitFor(marketing.id, [.skipped])
            XCTAssertEqual(skippedMail.reason, "email_unsubscribed")
            _ = try await rig.waitFor(receipt.id, [.sent])
            let mail = try XCTUnwrap(rig.fakes.ledger.deliveries("sendgrid").first)
            XCTAssertEqual(rig.fakes.ledger.deliveries("sendgrid").count, 1, "only the receipt went out")
            XCTAssertTrue(mail.body["headers"]?.contains("https://gw.example.com/u/") ?? false, "every email carries its signed link")
        }
        await rig.fakes.stop()
    }

    func test_failures_retryWithBackoff_deadLetter_andReplay() async throws {
        let rig = try await rig()
        let engine = try rig.startEngine()
        defer { engine.cancel() }
        try await rig.h.test { client in
            // A 503 is retried after a backoff; the harness clock makes it due.
            rig.fakes.ledger.inject("twilio.messages", FakeAnswer(status: 503, json: #"{"code":20500,"message":"Internal Server Error","status":503}"#))
            let flaky = try await Self.post(client, #"{"channel":"sms","to":"+14155550001","text":"one"}"#)
            let waiting = try await rig.waitFor(flaky.id, [.retrying])
            XCTAssertNotNil(waiting.nextAttemptAt)
            XCTAssertGreaterThanOrEqual((waiting.nextAttemptAt ?? 0) - rig.h.now, 1_000, "backoff of at least half the 2 s base")
            rig.h.now += 5_000
            let recovered = try await rig.waitFor(flaky.id, [.sent])
            XCTAssertEqual(recovered.attempts, 2)

            // A permanent error is dead-lettered with the provider's answer, and can be replayed.
            rig.fakes.ledger.inject("twilio.messages", FakeAnswer(status: 400, json: #"{"code":21211,"message":"The 'To' number is not valid.","status":400}"#))
            let bad = try await Self.post(client, #"{"channel":"sms","to":"+14155550002","text":"two"}"#)
            let failed = try await rig.waitFor(bad.id, [.failed])
            XCTAssertEqual(failed.reason, "bad_address", "an invalid number is a recipient reason")
            let list = try await client.get("/api/v1/deadletters")
            let letters = try XCTUnwrap(list.json["deadLetters"] as? [[String: Any]])
            let letter = try XCTUnwrap(letters.first { $0["messageId"] as? String == bad.id })
            XCTAssertTrue((letter["answer"] as? String ?? "").contains("21211"))
            let entry = try XCTUnwrap(letter["id"] as? String)
            let replay = try await client.send(.post, "/api/v1/deadletters/\(entry)/replay", json: "")
            XCTAssertEqual(replay.status, .accepted)
            _ = try await rig.waitFor(bad.id, [.sent])
            let again = try await client.send(.post, "/api/v1/deadletters/\(entry)/replay", json: "")
            XCTAssertEqual(again.status, .notFound, "a replayed letter is gone")

            // Discard removes a letter and sends nothing.
            rig.fakes.ledger.inject("twilio.messages", FakeAnswer(status: 401, json: #"{"code":20003,"message":"Authenticate","status":401}"#))
            let denied = try await Self.post(client, #"{"channel":"sms","to":"+14155550003","text":"three"}"#)
            _ = try await rig.waitFor(denied.id, [.failed])
            let list2 = try await client.get("/api/v1/deadletters")
            let letters2 = try XCTUnwrap(list2.json["deadLetters"] as? [[String: Any]])
            let entry2 = try XCTUnwrap(letters2.first { $0["messageId"] as? String == denied.id }?["id"] as? String)
            let discarded = try await client.execute(uri: "/api/v1/deadletters/\(entry2)", method: .delete, headers: [.authorization: "Bearer \(Harness.adminToken)"])
            XCTAssertEqual(discarded.status, .ok)
            XCTAssertEqual(rig.fakes.ledger.deliveries("twilio").map(\.to).sorted(), ["+14155550001", "+14155550002"])
        }
        await rig.fakes.stop()
    }

    func test_aProviderOptOut_isRecorded_andFreesTheCapSlot() async throws {
        let rig = try await rig()
        var config = rig.h.config
        config.contactRules.caps = [ContactRules.Cap(channel: nil, max: 1, windowHours: 24)]
        let engine = makeOutbound(
            config: config, redis: rig.h.redis, adapters: try loadAdapters(config: config, environment: rig.h.adapterEnvironment), clock: rig.h.clock
        ).engine
        let senders = Task { try await engine.run() }
        defer { senders.cancel() }
        let customers = CustomerStore(redis: rig.h.redis, config: config)
        try await customers.importBatch(
            [.init(identities: [Identity(kind: .phone, value: "+14155550009"), Identity(kind: .email, value: "stop@example.com")])], nowMs: rig.h.now)
        let found = try await customers.lookup(Identity(kind: .phone, value: "+14155550009"))
        let id = try XCTUnwrap(found)
        try await rig.h.test { client in
            // Twilio refuses at once: the person replied STOP earlier (21610).
            rig.fakes.ledger.inject(
                "twilio.messages", FakeAnswer(status: 400, json: #"{"code":21610,"message":"Attempt to send to unsubscribed recipient","status":400}"#))
            let first = try await Self.post(client, #"{"channel":"sms","customerId":"\#(id)","text":"Expo opens at 9"}"#)
            let failed = try await rig.waitFor(first.id, [.failed])
            XCTAssertEqual(failed.reason, "opted_out")
            guard case .found(let c) = try await customers.customer(id: id) else { return XCTFail("customer") }
            XCTAssertEqual(c.consent["sms"]?.state, "opted_out", "the refusal is the customer's opt-out now")
            let address = try await rig.h.redis.send("GET", AddressSuppression(key: AddressSuppression.devKey).key(channel: "sms", address: "+14155550009")).string
            XCTAssertTrue(address?.hasPrefix("opted_out|") == true)
            let history = try await rig.h.redis.send("ZCARD", Keys.contactHistory(id)).int
            XCTAssertEqual(history, 0, "the message that reached nobody gave its frequency-cap slot back")

            // The next SMS is not sent (Twilio is not called again); an email still goes, within the cap.
            let second = try await Self.post(client, #"{"channel":"sms","customerId":"\#(id)","text":"Last call"}"#)
            let skipped = try await rig.waitFor(second.id, [.skipped])
            XCTAssertEqual(skipped.reason, "sms_opted_out")
            XCTAssertEqual(rig.fakes.ledger.calls("twilio.messages"), 1)
            let email = try await Self.post(client, #"{"channel":"email","customerId":"\#(id)","subject":"Expo","text":"Opens at 9"}"#)
            _ = try await rig.waitFor(email.id, [.sent])
        }
        await rig.fakes.stop()
    }

    func test_wechatQuota_suspendsTheAccount_untilItsReset() async throws {
        let rig = try await rig()
        let engine = try rig.startEngine()
        defer { engine.cancel() }
        rig.fakes.wechat.setQuota("template", 0)
        try await rig.h.test { client in
            let m = try await Self.post(client, #"{"channel":"wechat","account":"demo","to":"oFan1","template":"T","variables":{"thing1":"Expo"}}"#)
            let deferred = try await rig.waitFor(m.id, [.retrying])
            XCTAssertEqual(deferred.nextAttemptAt, RateLimiter.quotaResetMs(channel: .wechat, nowMs: rig.h.now))
            let state = try await rig.h.redis.send("HGET", Keys.rateLimitState(Keys.rateLimit(adapter: "wechat-template", scope: "demo")), "suspendUntil").string
            XCTAssertNotNil(state, "the account's template API is suspended for every process")
            XCTAssertEqual(rig.fakes.ledger.calls("wechat.template"), 1, "no retry loop against a spent quota")
            let status = try await client.get("/api/v1/adapters")
            let adapters = try XCTUnwrap(status.json["adapters"] as? [[String: Any]])
            let template = try XCTUnwrap(adapters.first { $0["name"] as? String == "wechat-template" })
            let scopes = try XCTUnwrap(template["scopes"] as? [[String: Any]])
            XCTAssertEqual(scopes.first?["scope"] as? String, "demo")
            XCTAssertNotNil(scopes.first?["suspendedUntil"] as? String, "the adapter status shows the suspension")
            XCTAssertEqual((template["rateLimit"] as? [String: Any])?["scope"] as? String, "account")
            let budgets = try XCTUnwrap(status.json["accessTokens"] as? [[String: Any]])
            XCTAssertEqual(budgets.first?["account"] as? String, "demo")
            XCTAssertEqual(budgets.first?["fetchesToday"] as? Int, 1, "the engine fetched one token")
            XCTAssertEqual(budgets.first?["dailyBudget"] as? Int, 2000)
        }
        await rig.fakes.stop()
    }

    /// Twilio is asked (its message list for the number): it never got the dead process's call, so the
    /// message is sent now, once. WeChat drops a repeated client_msg_id: resent inside its window.
    func test_aSendLeftInDoubtByADeadProcess_isSettledByAskingTheProvider_orResentInsideItsDedupWindow() async throws {
        let rig = try await rig(claimIdleSeconds: 1)
        let store = rig.store
        let box = Mutex([String: String]())
        try await rig.h.test { client in
            let sms = try await Self.post(client, #"{"channel":"sms","to":"+14155550009","text":"x"}"#).id
            let wechat = try await Self.post(client, #"{"channel":"wechat","account":"demo","to":"oFan2","template":"T","variables":{"a":"1"}}"#).id
            box.withLock { $0 = ["sms": sms, "wechat": wechat] }
        }
        let ids = box.withLock { $0 }
        // A process read both, claimed them in the ledger, and died during the provider call.
        for (channel, id) in ids {
            let stream = rig.h.redis.streams.outbound(channel: channel, lane: .bulk, message: id)
            _ = try await rig.h.redis.send("XGROUP", "CREATE", stream, Keys.outboundGroup, "0", "MKSTREAM")
            _ = try await rig.h.redis.send("XREADGROUP", "GROUP", Keys.outboundGroup, "dead-process", "COUNT", "10", "STREAMS", stream, ">")
            let claim = try await store.claim(id, owner: "dead-process", now: rig.h.now)
            XCTAssertEqual(claim, .claimed(attempt: 1))
        }
        rig.h.now += 120_000  // two minutes later
        try await Task.sleep(for: .milliseconds(1100))  // past claimIdleSeconds in Redis's own idle clock
        let engine = try rig.startEngine()
        defer { engine.cancel() }
        let sms = try await rig.waitFor(ids["sms"]!, [.failed, .sent])
        XCTAssertEqual(sms.state, .sent, "Twilio had not seen it: sent now (\(sms.reason ?? ""))")
        XCTAssertEqual(rig.fakes.ledger.calls("twilio.messages.list"), 1, "Twilio was asked first")
        XCTAssertEqual(rig.fakes.ledger.deliveries("twilio").count, 1)
        let wx = try await rig.waitFor(ids["wechat"]!, [.sent, .failed])
        XCTAssertEqual(wx.state, .sent, "inside WeChat's 10-minute client_msg_id window a resend is safe")
        XCTAssertEqual(rig.fakes.ledger.deliveries("wechat.template").first?.messageId, ids["wechat"])
        await rig.fakes.stop()
    }

    /// The shipped specs with a 1-second provider timeout (so a hanging provider times out quickly).
    static func quickTimeoutAdapters() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("adapters-\(UUID().uuidString)").path
        try FileManager.default.copyItem(atPath: "adapters", toPath: dir)
        for name in ["twilio-sms", "wechat-template", "sendgrid-edm"] {
            let path = "\(dir)/\(name).yaml"
            var text = try String(contentsOfFile: path, encoding: .utf8)
            if let r = text.range(of: "  timeout_ms: 10000") {
                text.replaceSubrange(r, with: "  timeout_ms: 1000")
            } else {
                text = text.replacingOccurrences(of: "http:\n  method: POST\n", with: "http:\n  method: POST\n  timeout_ms: 1000\n")
            }
            XCTAssertTrue(text.contains("timeout_ms: 1000"), name)
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        }
        return dir
    }

    /// A provider that takes the message and never answers: the call times out after the request went
    /// out, so the outcome is unknown. Twilio is asked once it has had time to record the call: it has
    /// the message, so it counts as sent and is never sent again. WeChat drops a repeated
    /// client_msg_id: sent again once the provider answers, and its duplicate answer records the
    /// message as sent. The follower gets exactly one of each.
    func test_aTimeoutAfterTheRequestWentOut_isSettledByLookup_orResentInsideTheProvidersDedupWindow() async throws {
        let rig = try await rig(adaptersDir: try Self.quickTimeoutAdapters())
        let engine = try rig.startEngine()
        defer { engine.cancel() }
        try await rig.h.test { client in
            rig.fakes.ledger.outage = .hang
            let sms = try await Self.post(client, #"{"channel":"sms","to":"+14155550021","text":"hang"}"#).id
            let wechat = try await Self.post(client, #"{"channel":"wechat","account":"demo","to":"oFanHang","template":"T","variables":{"a":"1"}}"#).id
            let email = try await Self.post(client, #"{"channel":"email","to":"hang@example.com","subject":"Expo","text":"hang"}"#).id
            // SendGrid offers no lookup here and no dedup: dead-lettered, marked as possibly with the provider.
            let lost = try await rig.waitFor(email, [.failed, .sent])
            XCTAssertEqual(lost.reason, "outcome_unknown")
            let letters = try await client.get("/api/v1/deadletters")
            let letter = try XCTUnwrap((letters.json["deadLetters"] as? [[String: Any]])?.first { $0["messageId"] as? String == email }, letters.text)
            XCTAssertEqual(letter["providerSaw"] as? String, "unknown")
            let (cookie, _) = try await ConsoleActionTests.signIn(client, "olga", role: "admin")
            let page = try await client.execute(uri: "/console/operations", method: .get, headers: [.cookie: cookie])
            XCTAssertTrue(page.text.contains("data-provider-may-have-it"), "the console warns before a replay that may send twice")
            let doubtful = try await rig.waitFor(sms, [.retrying, .failed, .sent])
            XCTAssertEqual(doubtful.state, .retrying, doubtful.reason ?? "")
            XCTAssertNotNil(doubtful.doubtSince)
            XCTAssertTrue(doubtful.lastError?.contains("timeout") == true, doubtful.lastError ?? "")
            let waiting = try await rig.waitFor(wechat, [.retrying])
            XCTAssertNotNil(waiting.doubtSince, "the first doubtful call is remembered: resends stay inside WeChat's window")
            rig.fakes.ledger.outage = .none
            rig.h.now += 10_000
            let sent = try await rig.waitFor(wechat, [.sent])
            XCTAssertEqual(sent.attempts, 2)
            let settled = try await rig.waitFor(sms, [.sent, .failed])
            XCTAssertEqual(settled.state, .sent, "Twilio had it: counted as sent (\(settled.reason ?? ""))")
            XCTAssertEqual(settled.providerId, rig.fakes.ledger.deliveries("twilio").first?.providerId, "with Twilio's sid, from its list")
            XCTAssertEqual(rig.fakes.ledger.deliveries("twilio").count, 1, "the hung call did deliver; it was not repeated")
            XCTAssertEqual(rig.fakes.ledger.calls("twilio.messages"), 1)
            XCTAssertEqual(rig.fakes.ledger.calls("twilio.messages.list"), 1)
            XCTAssertEqual(rig.fakes.ledger.deliveries("wechat.template").map(\.messageId), [wechat])
            XCTAssertEqual(rig.fakes.ledger.calls("wechat.template.duplicate"), 1, "the resend met WeChat's dedup")
        }
        await rig.fakes.stop()
    }

    /// A provider answering 503 to everything: after 5 failures in a row the adapter's circuit opens
    /// (shown by GET /api/v1/adapters) and the rest of the queue waits without calling it or spending
    /// attempts; once it answers again a probe closes the circuit and everything goes, once each.
    func test_aFailingProvider_opensTheCircuit_andTheQueueWaitsForIt() async throws {
        let rig = try await rig(concurrency: 4)
        let engine = try rig.startEngine()
        defer { engine.cancel() }
        try await rig.h.test { client in
            rig.fakes.ledger.outage = .error
            var ids = [String]()
            for i in 0..<30 {
                ids.append(try await Self.post(client, #"{"channel":"wechat","account":"demo","to":"oFanDown\#(i)","template":"T","variables":{"a":"1"}}"#).id)
            }
            for id in ids { _ = try await rig.waitFor(id, [.retrying]) }
            // Down, WeChat refuses the access token too: a token call stands for the send.
            let calls = rig.fakes.ledger.calls("wechat.template") + rig.fakes.ledger.calls("wechat.token")
            XCTAssertLessThanOrEqual(calls, 5 + 4, "5 failures open the circuit; at most the calls already in flight follow")
            var untouched = 0
            for id in ids { if try await rig.store.get(id)?.attempts == 0 { untouched += 1 } }
            XCTAssertGreaterThanOrEqual(untouched, 30 - (5 + 4), "messages held by the open circuit spend no attempt")
            let status = try await client.get("/api/v1/adapters")
            let adapters = try XCTUnwrap(status.json["adapters"] as? [[String: Any]])
            let scope = try XCTUnwrap((adapters.first { $0["name"] as? String == "wechat-template" }?["scopes"] as? [[String: Any]])?.first)
            XCTAssertGreaterThanOrEqual(scope["providerFailures"] as? Int ?? 0, 5)
            XCTAssertNotNil(scope["circuitOpenUntil"] as? String, "the adapter status shows the open circuit")

            rig.fakes.ledger.outage = .none
            try await Task.sleep(for: .milliseconds(2100))  // the circuit's first open spell (Redis's clock)
            rig.h.now += 120_000  // every retry due
            for id in ids { _ = try await rig.waitFor(id, [.sent], seconds: 20) }
            XCTAssertEqual(Set(rig.fakes.ledger.deliveries("wechat.template").map(\.to)).count, 30)
            XCTAssertEqual(rig.fakes.ledger.deliveries("wechat.template").count, 30, "once each")
            let after = try await client.get("/api/v1/adapters")
            let scopes = ((after.json["adapters"] as? [[String: Any]])?.first { $0["name"] as? String == "wechat-template" }?["scopes"] as? [[String: Any]]) ?? []
            XCTAssertEqual(scopes.first?["providerFailures"] as? Int ?? 0, 0, "closed again")
            XCTAssertNil(scopes.first?["circuitOpenUntil"] as? String)
        }
        await rig.fakes.stop()
    }
}
