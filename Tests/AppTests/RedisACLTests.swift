import App
import Foundation
import GatewayCore
import Hummingbird
import HummingbirdTesting
import RedisClient
import Outbound
import Store
import TestSupport
import XCTest

/// The gateway as a Redis ACL user holding only the commands in config/redis-acl.txt: a workload that
/// touches every part (ingest, merges, tags, audiences, export, import, campaigns, journeys, keys,
/// audit) and then no refused command in ACL LOG. And credentials Redis refuses: 503, named in /readyz.
final class RedisACLTests: XCTestCase {
    static var rules: String {
        get throws { try String(contentsOf: GatewayProcess.root.appendingPathComponent("config/redis-acl.txt"), encoding: .utf8) }
    }

    func test_theDocumentedACL_coversEverythingTheGatewayDoes() async throws {
        let h = try Harness(aclRules: try Self.rules) { config in
            config.outbound.channels = ["sms": "sandbox-sms"]
            config.contactRules.quietHours = nil
            config.contactRules.requireOptIn = []
        }
        let admin = RedisPool(try XCTUnwrap(h.server, "an ACL harness has its own server").configuration)
        defer { admin.shutdown() }
        try await CustomerStore(redis: h.redis, config: h.config).prepareIndexes()
        let service = Task { try? await OutboundService(parts: makeOutbound(config: h.config, redis: h.redis, adapters: try loadAdapters(config: h.config), clock: h.clock)).run() }
        defer { service.cancel() }
        @Sendable func until(_ what: String, _ condition: () async throws -> Bool) async throws {
            for _ in 0..<500 { if try await condition() { return }; try await Task.sleep(for: .milliseconds(20)) }
            XCTFail("timed out waiting for \(what)")
        }
        try await h.test { client in
            func ok(_ r: TestResponse, _ what: String) { XCTAssertTrue(r.status.code < 300, "\(what): \(r.status) \(r.text)") }
            // Ingest: a subscribe and a message.
            for xml in [
                SampleCallbacks.event(to: "gh", from: "oACL1", event: "subscribe", eventKey: "qrscene_expo2026", createTime: h.nowSeconds),
                SampleCallbacks.text(to: "gh", from: "oACL1", content: "hello", msgId: "acl-1", createTime: h.nowSeconds),
            ] {
                ok(try await client.callback(try h.builder("demo").post(xml: xml, timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false)), "webhook")
            }
            // Events that create two customers, then merge them.
            ok(try await client.send(.post, "/api/v1/events", json: #"{"events":[{"type":"web.visit","identity":{"type":"phone","value":"+8613800138001"}},{"type":"web.visit","identity":{"type":"email","value":"acl@example.com"}}]}"#), "events")
            let merged = try await client.send(.post, "/api/v1/events", json: #"{"events":[{"type":"web.form","identities":[{"type":"phone","value":"+8613800138001"},{"type":"email","value":"acl@example.com","verified":true}]}]}"#)
            ok(merged, "merge")
            // And a collision that becomes a merge candidate, rejected.
            ok(try await client.send(.post, "/api/v1/events", json: #"{"events":[{"type":"web.visit","identity":{"type":"email","value":"other@example.com"}}]}"#), "events")
            ok(try await client.send(.post, "/api/v1/events", json: #"{"events":[{"type":"web.form","identities":[{"type":"email","value":"other@example.com"},{"type":"email","value":"acl@example.com"}]}]}"#), "candidate")
            let candidateList = try await client.get("/api/v1/merge-candidates")
            let candidate = try XCTUnwrap((candidateList.json["candidates"] as? [[String: Any]])?.first?["id"] as? String)
            ok(try await client.send(.post, "/api/v1/merge-candidates/\(candidate)/reject", json: "{}"), "reject")
            let customer = try XCTUnwrap((merged.json["results"] as? [[String: Any]])?.first?["customer"] as? String)
            ok(try await client.send(.patch, "/api/v1/customers/\(customer)", json: #"{"profile":{"city":"Shanghai"},"consent":{"sms":"granted"}}"#), "patch")
            ok(try await client.send(.post, "/api/v1/tags", json: #"{"name":"vip"}"#), "tag")
            ok(try await client.send(.post, "/api/v1/tags/vip/customers", json: "{\"customerIds\":[\"\(customer)\"]}"), "bulk tag")
            ok(try await client.send(.post, "/api/v1/audiences/preview", json: #"{"expression":"!vip | (consent:sms & profile.city=shanghai & !churned)"}"#), "preview")
            ok(try await client.get("/api/v1/audiences/export?expr=vip"), "export")
            ok(try await client.get("/api/v1/customers/\(customer)"), "customer")
            ok(try await client.get("/api/v1/customers/\(customer)/timeline"), "timeline")
            ok(try await client.get("/api/v1/adapters"), "adapters")
            ok(try await client.get("/api/v1/crm"), "crm")
            // An import, applied by the runner.
            let imported = try await CustomerImportTests.upload(client, "phone,profile.city\n+8613800138002,Beijing\n")
            ok(imported, "import")
            let job = try XCTUnwrap(imported.json["id"] as? String)
            try await until("the import") { try await client.get("/api/v1/imports/\(job)").json["state"] as? String == "completed" }
            // A campaign to the tag, sent.
            let campaign = try await client.send(.post, "/api/v1/campaigns", json: #"{"name":"ACL","audience":"vip","channels":[{"channel":"sms","text":"Hi"}]}"#)
            let cid = try XCTUnwrap(campaign.json["id"] as? String, campaign.text)
            ok(try await client.send(.post, "/api/v1/campaigns/\(cid)/start", json: "{}"), "start")
            try await until("the campaign") { try await client.get("/api/v1/campaigns/\(cid)").json["state"] as? String == "completed" }
            ok(try await client.get("/api/v1/campaigns/\(cid)/report"), "report")
            // A journey, triggered and sent.
            let journey = try await client.send(.post, "/api/v1/journeys", json: #"{"name":"ACL","trigger":{"event":"web.signup"},"steps":[{"id":"hi","send":{"channels":[{"channel":"sms","text":"Welcome"}]}},{"id":"t","tag":{"add":["welcomed"]}}]}"#)
            let jid = try XCTUnwrap(journey.json["id"] as? String, journey.text)
            ok(try await client.send(.post, "/api/v1/journeys/\(jid)/activate", json: "{}"), "activate")
            try await Task.sleep(for: .milliseconds(600))
            ok(try await client.send(.post, "/api/v1/events", json: #"{"events":[{"type":"web.signup","identity":{"type":"phone","value":"+8613800138001"}}]}"#), "signup")
            try await until("the journey") { try await h.redis.send("SISMEMBER", Keys.tag("welcomed"), customer).int == 1 }
            // A message, keys and the audit log.
            ok(try await client.send(.post, "/api/v1/messages", json: "{\"channel\":\"sms\",\"customerId\":\"\(customer)\",\"text\":\"one\"}"), "message")
            ok(try await client.get("/api/v1/deadletters"), "dead letters")
            let key = try await AccessTests.key(client, role: "support")
            ok(try await client.get("/api/v1/customers/\(customer)", token: key.key), "as a key")
            ok(try await client.get("/api/v1/audit"), "audit")
            ok(try await client.execute(uri: "/api/v1/tags/vip", method: .delete, headers: [.authorization: "Bearer \(Harness.adminToken)"]), "delete tag")
            // Export, erasure and its purge; the opt-out migration walks the keyspace once.
            ok(try await client.get("/api/v1/customers/\(customer)/export"), "export person")
            ok(try await client.send(.delete, "/api/v1/customers/\(customer)", json: ""), "erase")
            let purged = try await CustomerErasure(redis: h.redis, config: h.config, crmAdapters: [], clock: h.clock).runPending()
            XCTAssertTrue(purged)
            _ = try await h.redis.send("SET", "optout:sms:+8613800138009", "opted_out|1")
            _ = try await h.redis.send("DEL", Keys.optOutFormat)  // the running services migrated (nothing) at start
            let moved = try await CustomerStore(redis: h.redis, config: h.config).migrateOptOuts()
            XCTAssertEqual(moved, 1)
            let hashed = try await h.redis.pipeline([
                ["GET", AddressSuppression(h.config).key(channel: "sms", address: "+8613800138009")], ["EXISTS", "optout:sms:+8613800138009"],
            ])
            XCTAssertEqual(hashed[0].string, "opted_out|1", "moved under the keyed hash")
            XCTAssertEqual(hashed[1].int, 0, "the plain address is gone")
            ok(try await client.get("/readyz", token: nil), "readyz")
            let status = try await client.get("/api/v1/redis")
            ok(status, "redis status")
            XCTAssertEqual((status.json["nodes"] as? [[String: Any]])?.first?["state"] as? String, "up", status.text)
        }
        let log = try await admin.send("ACL", "LOG").array ?? []
        let refused = log.map { entry -> String in
            let f = entry.array ?? []
            var pairs = [String: String]()
            for i in stride(from: 0, to: f.count - 1, by: 2) { if let k = f[i].string { pairs[k] = f[i + 1].string ?? "" } }
            return "\(pairs["reason"] ?? "?") \(pairs["object"] ?? "?") (\(pairs["context"] ?? "?"))"
        }
        XCTAssertEqual(refused, [], "commands Redis refused the gateway: add them to config/redis-acl.txt")
    }

    func test_refusedCredentials_are503_andReadyzNamesThem() async throws {
        let h = try Harness()
        let server = try RedisTestServer(extraArguments: ["--requirepass", "the-right-one"])
        var wrong = server.configuration
        wrong.password = "not-the-right-one"
        for configuration in [wrong, server.configuration] {
            let pool = RedisPool(configuration)
            defer { pool.shutdown() }
            let app = buildApplication(config: h.config, redis: pool, adapters: try loadAdapters(config: h.config), clock: h.clock)
            try await app.test(.router) { client in
                let ready = try await client.get("/readyz", token: nil)
                XCTAssertEqual(ready.status, .serviceUnavailable)
                XCTAssertEqual(ready.json["redis"] as? String, "auth_failed", "distinct from down")
                let call = try await client.get("/api/v1/tags")
                XCTAssertEqual(call.status, .serviceUnavailable)
                XCTAssertFalse(call.text.contains("right-one"), "no secret leaks")
            }
        }
        server.stop()
        let down = RedisPool(server.configuration)
        defer { down.shutdown() }
        let app = buildApplication(config: h.config, redis: down, adapters: try loadAdapters(config: h.config), clock: h.clock)
        try await app.test(.router) { client in
            let ready = try await client.get("/readyz", token: nil)
            XCTAssertEqual(ready.json["redis"] as? String, "down")
        }
    }
}
