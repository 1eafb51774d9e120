import App
import Foundation
import GatewayCore
import GatewayCrypto
import Hummingbird
import HummingbirdTesting
import Ingress
import XCTest

/// API keys with roles, the route table's permissions, and the audit log, on a real redis-server.
final class AccessTests: XCTestCase {
    func harness() throws -> Harness {
        try Harness { config in
            config.outbound.channels = ["sms": "sandbox-sms"]
            config.outbound.linkSecret = "test-link-secret-0123456789"
        }
    }

    /// Creates a key with the bootstrap token; answers the whole key and its id.
    static func key(_ client: some TestClientProtocol, role: String, grants: [String] = [], expiresAt: String? = nil) async throws -> (key: String, id: String) {
        var body: [String: Any] = ["name": "\(role) key", "role": role, "grants": grants]
        if let expiresAt { body["expiresAt"] = expiresAt }
        let json = String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)
        let r = try await client.send(.post, "/api/v1/keys", json: json)
        XCTAssertEqual(r.status, .created, r.text)
        return (try XCTUnwrap(r.json["key"] as? String), try XCTUnwrap(r.json["id"] as? String))
    }

    func test_everyRouteDeclaresAPermission_andAdminRoutesAreNeverPublic() async throws {
        let h = try harness()
        let table = RouteTable()
        let adapters = try loadAdapters(config: h.config, environment: h.adapterEnvironment)
        let router = buildRouter(
            config: h.config, redis: h.redis, adapters: adapters, outbound: makeOutbound(config: h.config, redis: h.redis, adapters: adapters, clock: h.clock),
            crm: [], scoring: nil, table: table, clock: h.clock)
        let served = router.routes.map { "\($0.method.rawValue) \($0.path.description)" }
        let declared = table.declarations.map { "\($0.method) \($0.path)" }
        XCTAssertGreaterThan(served.count, 60)
        for route in served { XCTAssertTrue(declared.contains(route), "\(route) declares no permission") }
        XCTAssertEqual(Set(served), Set(declared))
        // Open: the document, and signing in (which audits itself).
        let open = Set(["GET /api/v1/openapi.yaml", "POST /api/v1/session"])
        for d in table.declarations where d.path.hasPrefix("/api/v1/") && !open.contains("\(d.method) \(d.path)") {
            XCTAssertNotEqual(d.permission, .public, "\(d.method) \(d.path) is open to anyone")
        }
        // Every route that changes something is audited (previewing an audience or a campaign is a read).
        let previews = Set(["/api/v1/audiences/preview", "/api/v1/campaigns/preview"])
        for d in table.declarations where d.path.hasPrefix("/api/v1/") && d.method != "GET" && d.permission != .public {
            XCTAssertTrue(d.isAudited || previews.contains(d.path), "\(d.method) \(d.path) writes no audit entry")
        }
    }

    func test_eachRole_allowedAndRefused() async throws {
        let h = try harness()
        try await h.test { client in
            // A known customer to look at, tag and message.
            let e = try await client.send(.post, "/api/v1/events", json: #"{"events":[{"type":"web.visit","identities":[{"type":"phone","value":"+8613800138000"}]}]}"#)
            let customer = try XCTUnwrap((e.json["results"] as? [[String: Any]])?.first?["customer"] as? String)
            _ = try await client.send(.post, "/api/v1/tags", json: #"{"name":"vip"}"#)

            struct Call {
                let method: HTTPRequest.Method
                let uri: String
                let body: String
            }
            let calls: [String: Call] = [
                "events": Call(method: .post, uri: "/api/v1/events", body: #"{"events":[{"type":"web.visit","identities":[{"type":"email","value":"a@example.com"}]}]}"#),
                "lookup": Call(method: .get, uri: "/api/v1/customers/lookup?phone=%2B8613800138000", body: ""),
                "customer": Call(method: .get, uri: "/api/v1/customers/\(customer)", body: ""),
                "timeline": Call(method: .get, uri: "/api/v1/customers/\(customer)/timeline", body: ""),
                "consent": Call(method: .patch, uri: "/api/v1/customers/\(customer)", body: #"{"consent":{"sms":"granted"}}"#),
                "profile": Call(method: .patch, uri: "/api/v1/customers/\(customer)", body: #"{"timezone":"Asia/Tokyo"}"#),
                "tags": Call(method: .get, uri: "/api/v1/tags", body: ""),
                "tag": Call(method: .post, uri: "/api/v1/tags/vip/customers", body: "{\"customerIds\":[\"\(customer)\"]}"),
                "export": Call(method: .get, uri: "/api/v1/audiences/export?expr=vip", body: ""),
                "sendKnown": Call(method: .post, uri: "/api/v1/messages", body: "{\"channel\":\"sms\",\"customerId\":\"\(customer)\",\"text\":\"hi\"}"),
                "sendAny": Call(method: .post, uri: "/api/v1/messages", body: #"{"channel":"sms","to":"+8613900139000","text":"hi"}"#),
                "sendTx": Call(method: .post, uri: "/api/v1/messages", body: "{\"channel\":\"sms\",\"customerId\":\"\(customer)\",\"text\":\"code 1234\",\"transactional\":true}"),
                "campaigns": Call(method: .get, uri: "/api/v1/campaigns", body: ""),
                "keys": Call(method: .get, uri: "/api/v1/keys", body: ""),
                "personExport": Call(method: .get, uri: "/api/v1/customers/\(customer)/export", body: ""),
                "audit": Call(method: .get, uri: "/api/v1/audit", body: ""),
                "segments": Call(method: .get, uri: "/api/v1/segments", body: ""),
                "segmentSave": Call(method: .put, uri: "/api/v1/segments/vips", body: #"{"expression":"vip"}"#),
            ]
            let allowed: [String: Set<String>] = [
                "admin": Set(calls.keys),
                "marketer": ["lookup", "customer", "timeline", "consent", "profile", "tags", "tag", "sendKnown", "campaigns", "segments", "segmentSave"],
                "analyst": ["lookup", "customer", "timeline", "tags", "campaigns", "segments"],
                "integration": ["events", "lookup", "customer", "timeline", "consent", "profile"],
                "support": ["lookup", "customer", "timeline", "consent"],
            ]
            for (role, permitted) in allowed.sorted(by: { $0.key < $1.key }) {
                let key = try await Self.key(client, role: role).key
                for (name, call) in calls.sorted(by: { $0.key < $1.key }) {
                    let r = call.method == .get
                        ? try await client.get(call.uri, token: key) : try await client.send(call.method, call.uri, json: call.body, token: key)
                    if permitted.contains(name) {
                        XCTAssertTrue(r.status.code < 400, "\(role) \(name): \(r.status) \(r.text)")
                    } else {
                        XCTAssertEqual(r.status, .forbidden, "\(role) \(name): \(r.text)")
                        XCTAssertEqual(r.errorCode, "forbidden")
                    }
                }
            }
            // An analyst may export once granted it; a grant outside the grantable set is refused.
            let granted = try await Self.key(client, role: "analyst", grants: ["customers.export"]).key
            let export = try await client.get("/api/v1/audiences/export?expr=vip", token: granted)
            XCTAssertEqual(export.status, .ok, export.text)
            let person = try await client.get("/api/v1/customers/\(customer)/export", token: granted)
            XCTAssertEqual(person.status, .ok, person.text)
            for role in ["marketer", "analyst", "integration", "support"] {
                let erase = try await client.send(.delete, "/api/v1/customers/\(customer)", json: "", token: try await Self.key(client, role: role).key)
                XCTAssertEqual(erase.status, .forbidden, "\(role) may not erase")
            }
            let bad = try await client.send(.post, "/api/v1/keys", json: #"{"name":"x","role":"analyst","grants":["keys.manage"]}"#)
            XCTAssertEqual(bad.errorCode, "invalid_grant")
        }
    }

    func test_keys_shownOnceStoredAsHash_revokedAndExpired() async throws {
        let h = try harness()
        try await h.test { client in
            let created = try await client.send(.post, "/api/v1/keys", json: #"{"name":"crm bridge","role":"integration","expiresAt":"2026-09-30T00:00:00Z"}"#)
            XCTAssertEqual(created.status, .created)
            let key = try XCTUnwrap(created.json["key"] as? String)
            let id = try XCTUnwrap(created.json["id"] as? String)
            XCTAssertTrue(key.hasPrefix("scrm_\(id)_"))
            XCTAssertEqual(created.json["prefix"] as? String, "scrm_\(id)")

            // Redis holds the SHA-256 of the secret, never the secret.
            let stored = try await h.redis.send("HGETALL", "apikey:{\(id)}").dictionary
            let secret = String(key.split(separator: "_")[2])
            XCTAssertEqual(stored["hash"], Hex.encode(Digest.sha256(Array(secret.utf8))))
            let dump = try await h.redis.send("DUMP", "apikey:{\(id)}").string ?? ""
            XCTAssertFalse(dump.contains(secret))

            // Listed without the key; used keys show when.
            let ok = try await client.get("/api/v1/customers/lookup?phone=%2B8613800000000", token: key)
            XCTAssertEqual(ok.status, .notFound, ok.text)
            let list = try await client.get("/api/v1/keys")
            let listed = try XCTUnwrap((list.json["keys"] as? [[String: Any]])?.first { $0["id"] as? String == id })
            XCTAssertNil(listed["key"])
            XCTAssertEqual(listed["role"] as? String, "integration")
            XCTAssertNotNil(listed["lastUsedAt"] as? String)
            XCTAssertEqual(listed["expiresAt"] as? String, "2026-09-30T00:00:00.000Z")

            // A wrong secret on a real id, and a key that is not ours, are refused alike.
            let forged = try await client.get("/api/v1/customers/lookup?phone=%2B8613800000000", token: "scrm_\(id)_" + String(repeating: "0", count: 48))
            XCTAssertEqual(forged.status, .unauthorized)
            XCTAssertEqual(forged.errorCode, "unauthorized")

            // Expiry.
            h.now = 1_790_000_000_000 + 30 * 86_400_000
            let expired = try await client.get("/api/v1/customers/lookup?phone=%2B8613800000000", token: key)
            XCTAssertEqual(expired.errorCode, "key_expired")
            h.now = 1_790_000_000_000

            // Revocation takes effect on the next call.
            let revoked = try await client.execute(uri: "/api/v1/keys/\(id)", method: .delete, headers: [.authorization: "Bearer \(Harness.adminToken)"])
            XCTAssertEqual(revoked.status, .ok)
            XCTAssertNotNil(revoked.json["revokedAt"] as? String)
            let after = try await client.get("/api/v1/customers/lookup?phone=%2B8613800000000", token: key)
            XCTAssertEqual(after.status, .unauthorized)
            XCTAssertEqual(after.errorCode, "key_revoked")
            let missing = try await client.execute(uri: "/api/v1/keys/000000000000", method: .delete, headers: [.authorization: "Bearer \(Harness.adminToken)"])
            XCTAssertEqual(missing.status, .notFound)
            for body in [#"{"name":"","role":"admin"}"#, #"{"name":"x","role":"root"}"#, #"{"name":"x","role":"admin","expiresAt":"2020-01-01T00:00:00Z"}"#] {
                let r = try await client.send(.post, "/api/v1/keys", json: body)
                XCTAssertEqual(r.status, .badRequest, body)
            }
        }
    }

    func test_audit_everyMutatingRouteWritesOneEntry_readsWriteNone() async throws {
        let h = try harness()
        let table = RouteTable()
        let adapters = try loadAdapters(config: h.config, environment: h.adapterEnvironment)
        _ = buildRouter(
            config: h.config, redis: h.redis, adapters: adapters, outbound: makeOutbound(config: h.config, redis: h.redis, adapters: adapters, clock: h.clock),
            crm: [], scoring: nil, table: table, clock: h.clock)
        try await h.test { client in
            let mutating = table.declarations.filter { $0.path.hasPrefix("/api/v1/") && $0.isAudited }
            XCTAssertGreaterThan(mutating.count, 30)
            for d in mutating {
                let before = try await h.redis.send("XLEN", "stream:audit").int ?? 0
                // Path parameters filled with ids that name nothing; the body is not valid: whatever the
                // answer, the attempt is recorded.
                let uri = d.path.replacingOccurrences(of: #"\{[a-z]+\}"#, with: "zz0000000000", options: .regularExpression)
                let r = try await client.execute(
                    uri: uri, method: HTTPRequest.Method(d.method)!, headers: [.authorization: "Bearer \(Harness.adminToken)", .contentType: "application/json"],
                    body: ByteBuffer(string: "{}"))
                let after = try await h.redis.send("XLEN", "stream:audit").int ?? 0
                XCTAssertEqual(after, before + 1, "\(d.method) \(d.path) answered \(r.status) and wrote \(after - before) audit entries")
                let last = try await h.redis.send("XREVRANGE", "stream:audit", "+", "-", "COUNT", "1").array?.first?.array?[1].dictionary ?? [:]
                XCTAssertEqual(last["route"], d.path)
                XCTAssertEqual(last["method"], d.method)
                XCTAssertEqual(last["actor"], "bootstrap")
                XCTAssertEqual(last["status"], String(r.status.code))
            }
            let reads = try await h.redis.send("XLEN", "stream:audit").int ?? 0
            _ = try await client.get("/api/v1/tags")
            _ = try await client.get("/api/v1/campaigns")
            let afterReads = try await h.redis.send("XLEN", "stream:audit").int ?? 0
            XCTAssertEqual(afterReads, reads, "reads are not audited")
        }
    }

    func test_audit_namesActorTargetsAndOutcome_andFiltersByActor() async throws {
        let h = try harness()
        try await h.test { client in
            let marketer = try await Self.key(client, role: "marketer")
            let analyst = try await Self.key(client, role: "analyst")
            let made = try await client.send(.post, "/api/v1/tags", json: #"{"name":"expo"}"#, token: marketer.key)
            XCTAssertEqual(made.status, .created)
            let refused = try await client.send(.post, "/api/v1/tags", json: #"{"name":"nope"}"#, token: analyst.key)
            XCTAssertEqual(refused.status, .forbidden)
            let denied = try await client.get("/api/v1/audit", token: marketer.key)
            XCTAssertEqual(denied.status, .forbidden)

            let mine = try await client.get("/api/v1/audit?actor=key:\(marketer.id)")
            let entries = try XCTUnwrap(mine.json["entries"] as? [[String: Any]])
            XCTAssertEqual(entries.count, 2, mine.text)  // the tag, and the audit read it was refused
            XCTAssertEqual(entries[0]["route"] as? String, "/api/v1/tags")
            XCTAssertEqual(entries[0]["targets"] as? [String], ["expo"])
            XCTAssertEqual(entries[0]["outcome"] as? String, "ok")
            XCTAssertEqual(entries[0]["status"] as? Int, 201)
            XCTAssertEqual(entries[0]["role"] as? String, "marketer")
            XCTAssertEqual(entries[1]["outcome"] as? String, "denied")
            let theirs = try await client.get("/api/v1/audit?actor=key:\(analyst.id)")
            let refusedEntry = try XCTUnwrap((theirs.json["entries"] as? [[String: Any]])?.first)
            XCTAssertEqual(refusedEntry["outcome"] as? String, "denied")
            XCTAssertEqual(refusedEntry["status"] as? Int, 403)
            // Key creation by the bootstrap admin names the key made.
            let creations = try await client.get("/api/v1/audit?actor=bootstrap&limit=1")
            XCTAssertEqual((creations.json["entries"] as? [[String: Any]])?.first?["targets"] as? [String], [marketer.id])
            XCTAssertNotNil(creations.json["next"] as? String)
            let later = try await client.get("/api/v1/audit?since=2030-01-01T00:00:00Z")
            XCTAssertEqual((later.json["entries"] as? [[String: Any]])?.count, 0)
            let bad = try await client.get("/api/v1/audit?since=yesterday")
            XCTAssertEqual(bad.errorCode, "invalid_since")
        }
    }

    func test_me_namesTheCaller() async throws {
        let h = try harness()
        try await h.test { client in
            let support = try await Self.key(client, role: "support")
            let me = try await client.get("/api/v1/me", token: support.key)
            XCTAssertEqual(me.json["actor"] as? String, "key:\(support.id)")
            XCTAssertEqual(Set(me.json["permissions"] as? [String] ?? []), ["session", "customers.read", "consent.write"])
        }
    }

    func test_adminListener_keepsTheAPIOffThePublicPort() async throws {
        let h = try Harness { $0.server.adminPort = 9999 }
        let adapters = try loadAdapters(config: h.config)
        let callback = try h.builder("plain").post(
            xml: SampleCallbacks.text(to: "g", from: "oLISTEN", content: "hi", msgId: "listen-1", createTime: h.nowSeconds), timestamp: h.nowSeconds,
            nonce: freshNonce(), encrypt: false)
        let publicApp = buildApplication(config: h.config, redis: h.redis, adapters: adapters, listener: .public, clock: h.clock)
        try await publicApp.test(.router) { client in
            for uri in ["/api/v1/me", "/metrics", "/api/v1/openapi.yaml"] {
                let r = try await client.get(uri)
                XCTAssertEqual(r.status, .notFound, "\(uri) is served on the public port")
            }
            let session = try await client.send(.post, "/api/v1/session", json: #"{"name":"x","password":"y"}"#, token: nil)
            XCTAssertEqual(session.status, .notFound, "signing in is on the admin port only")
            let r1 = try await client.callback(callback)
            XCTAssertEqual(r1.status, .ok)
            let r2 = try await client.get("/healthz", token: nil)
            XCTAssertEqual(r2.status, .ok)
        }
        let adminApp = buildApplication(config: h.config, redis: h.redis, adapters: adapters, listener: .admin, clock: h.clock)
        try await adminApp.test(.router) { client in
            let r3 = try await client.get("/api/v1/me")
            XCTAssertEqual(r3.status, .ok)
            let r4 = try await client.get("/metrics", token: nil)
            XCTAssertEqual(r4.status, .ok)
            let r5 = try await client.get("/readyz", token: nil)
            XCTAssertEqual(r5.status, .ok)
            let r6 = try await client.callback(callback)
            XCTAssertEqual(r6.status, .notFound, "webhooks are on the public port only")
        }
    }
}
