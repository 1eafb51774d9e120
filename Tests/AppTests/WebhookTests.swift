import Foundation
import GatewayCore
import GatewayCrypto
import Hummingbird
import HummingbirdTesting
import NIOCore
import XCTest

final class WebhookTests: XCTestCase {
    func test_handshake_echoesEchostrOnlyWhenSignatureHolds() async throws {
        let h = try Harness()
        try await h.test { client in
            let good = try h.builder("demo").handshake(echo: "echo123", timestamp: h.nowSeconds, nonce: "n1")
            let ok = try await client.execute(uri: good.pathAndQuery, method: .get)
            XCTAssertEqual(ok.status, .ok)
            XCTAssertEqual(ok.text, "echo123")
            let bad = good.pathAndQuery.replacingOccurrences(of: "echostr=echo123", with: "echostr=echo123&signature=0")
            let forged = try await client.execute(uri: bad.replacingOccurrences(of: "signature=", with: "signature=f"), method: .get)
            XCTAssertEqual(forged.status, .forbidden)
        }
    }

    func test_wecomHandshake_decryptsTencentSampleEchostr() async throws {
        let h = try Harness()
        h.now = 1_409_659_589_000
        let echostr = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
        let query = CallbackBuilder.encode([
            ("msg_signature", "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"), ("timestamp", "1409659589"), ("nonce", "263014780"), ("echostr", echostr),
        ])
        try await h.test { client in
            let r = try await client.execute(uri: "/webhooks/wecom/corp?" + query, method: .get)
            XCTAssertEqual(r.status, .ok)
            XCTAssertEqual(r.text, "1616140317555161061")
        }
    }

    func test_plainText_createsCustomerWithTimelineSessionAndStreamEntry() async throws {
        let h = try Harness()
        let content = "价格 & <terms> \"quoted\" ✓"
        let xml = SampleCallbacks.text(to: "gh_plain", from: "oPLAIN1", content: content, msgId: "1001", createTime: h.nowSeconds)
        try await h.test { client in
            let r = try await client.callback(try h.builder("plain").post(xml: xml, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false))
            XCTAssertEqual(r.status, .ok)
            XCTAssertEqual(r.text, "success")

            let found = try await client.get("/api/v1/customers/lookup?account=plain&openid=oPLAIN1")
            XCTAssertEqual(found.status, .ok)
            let id = try XCTUnwrap(found.json["id"] as? String)
            XCTAssertEqual((found.json["identities"] as? [[String: String]])?.first?["value"], "oPLAIN1")

            let timeline = try await client.get("/api/v1/customers/\(id)/timeline")
            let items = try XCTUnwrap(timeline.json["items"] as? [[String: Any]])
            XCTAssertEqual(items.count, 1)
            XCTAssertEqual(items[0]["type"] as? String, "message.text")
            XCTAssertEqual((items[0]["data"] as? [String: String])?["Content"], content, "stored byte for byte")

            let session = try await client.get("/api/v1/sessions/plain/oPLAIN1")
            XCTAssertEqual(session.status, .ok)
            XCTAssertEqual(session.json["customerId"] as? String, id)
            XCTAssertEqual(session.json["windowOpen"] as? Bool, true)
            XCTAssertEqual((session.json["messages"] as? [Any])?.count, 1)
        }
        let stream = try await h.inboundLength()
        XCTAssertEqual(stream, 1)
        let ttl = try await h.redis.send("TTL", Keys.session(account: "plain", openid: "oPLAIN1")).int ?? 0
        XCTAssertTrue((48 * 3600 - 5...48 * 3600).contains(ttl), "session expires 48 h after the last activity, got \(ttl)")
    }

    func test_timelineAndSession_keepOnlyTheNewestUpToTheirCaps() async throws {
        let h = try Harness { config in
            config.customers.timelineCap = 3
            config.sessions.messageCap = 5
        }
        try await h.test { client in
            for i in 1...6 {
                h.now += 1000
                let xml = SampleCallbacks.text(to: "gh_demo", from: "oCAP", content: "hello \(i)", msgId: "\(7000 + i)", createTime: h.nowSeconds)
                let r = try await client.callback(try h.builder("demo").post(xml: xml, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false))
                XCTAssertEqual(r.status, .ok)
            }
            let found = try await client.get("/api/v1/customers/lookup?account=demo&openid=oCAP")
            let id = try XCTUnwrap(found.json["id"] as? String)
            let timeline = try await client.get("/api/v1/customers/\(id)/timeline")
            let contents = (timeline.json["items"] as? [[String: Any]] ?? []).map { ($0["data"] as? [String: String])?["Content"] }
            XCTAssertEqual(contents, ["hello 6", "hello 5", "hello 4"], "newest first, capped at 3")

            let session = try await client.get("/api/v1/sessions/demo/oCAP")
            let messages = try XCTUnwrap(session.json["messages"] as? [[String: Any]])
            XCTAssertEqual(messages.count, 5, "each exchange stores the message and the auto-reply; capped at 5")
            XCTAssertEqual(messages.map { $0["direction"] as? String }, ["out", "in", "out", "in", "out"], "oldest first, last exchange kept")
            XCTAssertEqual(messages.compactMap { ($0["data"] as? [String: String])?["Content"] }, ["hello 5", "hello 6"])
            XCTAssertEqual(session.json["customerId"] as? String, id)
        }
    }

    func test_autoReply_retryWithNewNonceGetsSameReplyAndStoresOnce() async throws {
        let h = try Harness()
        let xml = SampleCallbacks.text(to: "gh_demo", from: "oDEMO1", content: "HELLO there", msgId: "2001", createTime: h.nowSeconds)
        try await h.test { client in
            let first = try await client.callback(try h.builder("demo").post(xml: xml, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false))
            XCTAssertEqual(first.status, .ok)
            let reply = try InboundMessage.parse(Array(first.text.utf8))
            XCTAssertEqual(reply["Content"], "Hi ]]> there", "a ]]> in the reply is split across CDATA sections")
            XCTAssertEqual(reply.fromUser, "gh_demo")
            XCTAssertEqual(reply.toUser, "oDEMO1")

            h.now += 5000
            let retry = try await client.callback(try h.builder("demo").post(xml: xml, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false))
            XCTAssertEqual(retry.status, .ok)
            XCTAssertEqual(retry.text, first.text, "a retry gets the first delivery's reply")
        }
        let id = try await h.redis.send("GET", "idx:openid:demo:oDEMO1").string ?? ""
        let timeline = try await h.redis.send("LLEN", Keys.customerTimeline(id)).int
        XCTAssertEqual(timeline, 1)
    }

    func test_safeMode_encryptedRequestGetsEncryptedSignedReply() async throws {
        let h = try Harness()
        let xml = SampleCallbacks.text(to: "gh_demo", from: "oSAFE1", content: "hello 你好", msgId: "3001", createTime: h.nowSeconds)
        try await h.test { client in
            let r = try await client.callback(try h.builder("demo").post(xml: xml, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: true))
            XCTAssertEqual(r.status, .ok)
            let envelope = try InboundMessage.parse(Array(r.text.utf8))
            let encrypt = try XCTUnwrap(envelope.encrypt)
            let signature = try XCTUnwrap(envelope["MsgSignature"])
            XCTAssertTrue(WeChatSignature.verify(signature, parts: ["pamtest", envelope["TimeStamp"] ?? "", envelope["Nonce"] ?? "", encrypt]))
            let cipher = try WeChatCipher(encodingAESKey: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", appId: "wxb11529c136998cb6")
            let inner = try InboundMessage.parse(try cipher.decrypt(base64: encrypt))
            XCTAssertEqual(inner["Content"], "Hi ]]> there")
            XCTAssertEqual(inner.toUser, "oSAFE1")
        }
    }

    func test_safeAccount_refusesPlainPostAndAcceptsEncrypted() async throws {
        let h = try Harness()
        let xml = SampleCallbacks.text(to: "gh_safe", from: "oS", content: "x", msgId: "4001", createTime: h.nowSeconds)
        try await h.test { client in
            let plain = try await client.callback(try h.builder("safe").post(xml: xml, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false))
            XCTAssertEqual(plain.status, .forbidden)
            XCTAssertEqual(plain.errorCode, "encryption_required")
            let enc = try await client.callback(try h.builder("safe").post(xml: xml, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: true))
            XCTAssertEqual(enc.status, .ok)
            XCTAssertEqual(enc.text, "success")
        }
    }

    func test_concurrentDeliveriesOfOneMsgId_storeOneInteraction() async throws {
        let h = try Harness()
        let xml = SampleCallbacks.text(to: "gh_demo", from: "oCONC", content: "hello", msgId: "5001", createTime: h.nowSeconds)
        let requests = try (0..<8).map { _ in try h.builder("demo").post(xml: xml, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false) }
        try await h.test { client in
            let bodies = try await withThrowingTaskGroup(of: String.self) { group in
                for r in requests {
                    group.addTask {
                        let response = try await client.callback(r)
                        XCTAssertEqual(response.status, .ok)
                        return response.text
                    }
                }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            XCTAssertEqual(Set(bodies).count, 1, "every delivery got the same reply")
        }
        let stream = try await h.inboundLength()
        XCTAssertEqual(stream, 1)
        let customers = try await h.customerRecords()
        XCTAssertEqual(customers, 1)
    }

    func test_forgedRequest_doesNotBurnGenuineMsgId() async throws {
        let h = try Harness()
        let xml = SampleCallbacks.text(to: "gh_demo", from: "oVICTIM", content: "real", msgId: "6001", createTime: h.nowSeconds)
        try await h.test { client in
            let genuine = try h.builder("demo").post(xml: xml, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false)
            let forged = CallbackBuilder.Request(
                pathAndQuery: genuine.pathAndQuery.replacingOccurrences(of: "signature=", with: "signature=0"), body: genuine.body)
            let f = try await client.callback(forged)
            XCTAssertEqual(f.status, .forbidden)
            let g = try await client.callback(try h.builder("demo").post(xml: xml, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false))
            XCTAssertEqual(g.status, .ok)
        }
        let exists = try await h.redis.send("EXISTS", "idx:openid:demo:oVICTIM").int
        XCTAssertEqual(exists, 1, "the genuine delivery was stored")
    }

    func test_subscribeWithScene_tagsAndGrantsConsent_unsubscribeRevokes() async throws {
        let h = try Harness()
        try await h.test { client in
            let sub = SampleCallbacks.event(to: "gh", from: "oSUB", event: "subscribe", eventKey: "qrscene_expo2026", createTime: h.nowSeconds)
            let r1 = try await client.callback(try h.builder("demo").post(xml: sub, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false))
            XCTAssertEqual(r1.status, .ok)
            var c = try await client.get("/api/v1/customers/lookup?account=demo&openid=oSUB").json
            XCTAssertEqual(c["tags"] as? [String], ["source:expo-2026"])
            XCTAssertEqual(((c["consent"] as? [String: Any])?["wechat:demo"] as? [String: Any])?["state"] as? String, "granted")
            let members = try await h.redis.send("SMEMBERS", h.shard(c["id"] as? String ?? "").key("tag", "source:expo-2026")).strings
            XCTAssertEqual(members, [c["id"] as? String ?? ""])

            h.now += 60_000
            let unsub = SampleCallbacks.event(to: "gh", from: "oSUB", event: "unsubscribe", createTime: h.nowSeconds)
            _ = try await client.callback(try h.builder("demo").post(xml: unsub, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false))
            c = try await client.get("/api/v1/customers/lookup?account=demo&openid=oSUB").json
            XCTAssertEqual(((c["consent"] as? [String: Any])?["wechat:demo"] as? [String: Any])?["state"] as? String, "revoked")
        }
    }

    func test_wecomExternalContactAdd_createsCustomerWithWecomIdentity() async throws {
        let h = try Harness()
        let xml = SampleCallbacks.externalContact(corpId: "wx5823bf96d3bd56c7", change: "add_external_contact", userId: "zhangsan", externalUserId: "wmEXT1", createTime: h.nowSeconds)
        try await h.test { client in
            let r = try await client.callback(try h.builder("corp").post(xml: xml, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: true))
            XCTAssertEqual(r.status, .ok)
            let c = try await client.get("/api/v1/customers/lookup?account=corp&wecom=wmEXT1")
            XCTAssertEqual(c.status, .ok)
            XCTAssertEqual(((c.json["consent"] as? [String: Any])?["wecom:corp"] as? [String: Any])?["state"] as? String, "granted")
        }
    }

    func test_unknownType_isAcknowledgedAndKeptRaw() async throws {
        let h = try Harness()
        let xml = "<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[oU]]></FromUserName><CreateTime>\(h.nowSeconds)</CreateTime><MsgType><![CDATA[miniprogrampage]]></MsgType><Title><![CDATA[t]]></Title><Nested><A>1</A><A>2</A></Nested></xml>"
        try await h.test { client in
            let r = try await client.callback(try h.builder("plain").post(xml: xml, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false))
            XCTAssertEqual(r.status, .ok)
            XCTAssertEqual(r.text, "success")
        }
        let fields = try await h.inboundEntries().first ?? [:]
        XCTAssertTrue(fields.values.contains("unknown.miniprogrampage"))
        let payload = fields["payload"] ?? ""
        XCTAssertTrue(payload.contains("\"Nested.A[1]\":\"2\""), payload)
    }

    func test_redisOutage_answers503AndReadyzShowsIt_thenRecoversByItself() async throws {
        let h = try Harness()
        // On the shared cluster a node's outage is scripts/drill cluster-failover's to show.
        guard let server = h.server else { throw XCTSkip("stops the gateway's own redis-server; not run on the test cluster") }
        try await h.test { client in
            let ready = try await client.execute(uri: "/readyz", method: .get)
            XCTAssertEqual(ready.status, .ok)
            server.stop()
            let down = try await client.execute(uri: "/readyz", method: .get)
            XCTAssertEqual(down.status, .serviceUnavailable)
            let xml = SampleCallbacks.text(to: "gh", from: "oOUT", content: "during outage", msgId: "7001", createTime: h.nowSeconds)
            let during = try await client.callback(try h.builder("plain").post(xml: xml, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false))
            XCTAssertEqual(during.status, .serviceUnavailable, "not 'success': WeChat must retry")
            XCTAssertFalse(during.text.contains("redis"), "no internals in the body")
            let health = try await client.execute(uri: "/healthz", method: .get)
            XCTAssertEqual(health.status, .ok)

            try server.start()
            var status = HTTPResponse.Status.serviceUnavailable
            for _ in 0..<40 where status != .ok {
                try await Task.sleep(for: .milliseconds(50))
                status = try await client.execute(uri: "/readyz", method: .get).status
            }
            XCTAssertEqual(status, .ok)
            let retry = try await client.callback(try h.builder("plain").post(xml: xml, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false))
            XCTAssertEqual(retry.status, .ok, "the platform's retry is stored once Redis is back")
        }
        let stored = try await h.redis.send("EXISTS", "idx:openid:plain:oOUT").int
        XCTAssertEqual(stored, 1)
    }
}
