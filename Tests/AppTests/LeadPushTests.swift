import CRMSync
import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Store
import XCTest

/// `POST /webhooks/leads/{source}` on a real redis-server: signed leads become scored interactions,
/// once per lead id; anything unsigned, stale, replayed or malformed is refused and stores nothing.
final class LeadPushTests: XCTestCase {
    static let secret = "lead-secret-0123456789abcdef"

    func test_signedLeads_areRecordedOnceScoredAndQueuedForTheCRM_badOnesRefusedStoringNothing() async throws {
        let h = try Harness { $0.leads.sources = [.init(id: "website", secret: Self.secret)] }
        let leads = """
            {"leads": [
              {"id": "L1", "identities": [{"type": "phone", "value": "+8613800000001"}, {"type": "email", "value": "ann@example.com"}],
               "data": {"form": "expo-signup", "company": "Acme"}},
              {"id": "L2", "identities": [{"type": "email", "value": "bo@example.com"}], "at": \(h.now - 3_600_000)}
            ]}
            """
        try await h.test { client in
            let now = h.now
            func push(_ body: String, source: String = "website", secret: String = LeadPushTests.secret, at: Int64? = nil, signed: Bool = true) async throws -> TestResponse {
                try await LeadPushTests.push(client, body, source: source, secret: secret, atMs: at ?? now, signed: signed)
            }
            let unsigned = try await push(leads, signed: false)
            XCTAssertEqual(unsigned.status, .forbidden)
            XCTAssertEqual(unsigned.errorCode, "bad_signature")
            let forged = try await push(leads, secret: "not-the-secret-at-all")
            XCTAssertEqual(forged.status, .forbidden)
            let stale = try await push(leads, at: now - 600_000)
            XCTAssertEqual(stale.status, .forbidden, "older than the window")
            let unknown = try await push(leads, source: "nobody")
            XCTAssertEqual(unknown.status, .notFound)
            let badPhone = try await push(#"{"leads": [{"id": "L9", "identities": [{"type": "phone", "value": "call me"}]}]}"#)
            XCTAssertEqual(badPhone.status, .badRequest)
            XCTAssertEqual(badPhone.errorCode, "invalid_lead")
            let message = (badPhone.json["error"] as? [String: Any])?["message"] as? String ?? ""
            XCTAssertTrue(message.hasPrefix("leads[0].identities[0]"), message)
            let noId = try await push(#"{"leads": [{"identities": [{"type": "email", "value": "x@example.com"}]}]}"#)
            XCTAssertEqual(noId.status, .badRequest)
            let garbage = try await push("<xml/>")
            XCTAssertEqual(garbage.status, .badRequest)
            let nothing = try await h.customersAndInteractions()
            XCTAssertEqual(nothing, [0, 0], "refused pushes store nothing")

            let ok = try await push(leads)
            XCTAssertEqual(ok.status, .ok, ok.text)
            XCTAssertEqual(ok.json["recorded"] as? Int, 2)
            let replayed = try await push(leads)
            XCTAssertEqual(replayed.status, .forbidden, "the same signed request again")
            XCTAssertEqual(replayed.errorCode, "replayed")
            let resent = try await push(leads, at: now + 1000)
            XCTAssertEqual(resent.status, .ok)
            XCTAssertEqual(resent.json["duplicates"] as? Int, 2, "a resend, signed anew, records each lead once")
            XCTAssertEqual(resent.json["recorded"] as? Int, 0)
        }
        let after = try await h.customersAndInteractions()
        XCTAssertEqual(after, [2, 2])
        let store = CustomerStore(redis: h.redis, config: h.config)
        let ann = try await store.lookup(Identity(kind: .phone, value: "+8613800000001"))
        let annByEmail = try await store.lookup(Identity(kind: .email, value: "ann@example.com"))
        XCTAssertNotNil(ann)
        XCTAssertEqual(ann, annByEmail, "one customer for the lead's identities")
        let timeline = try await h.redis.send("LRANGE", "cust:{\(ann!)}:timeline", "0", "-1").strings
        let entries = timeline.compactMap { JSONValue.parse(Array($0.utf8)) }
        let entry = try XCTUnwrap(entries.first { $0.lookup("type")?.scalarText == "lead.submitted" })
        XCTAssertEqual(entry.lookup("data")?.lookup("source")?.scalarText, "website")
        XCTAssertEqual(entry.lookup("data")?.lookup("form")?.scalarText, "expo-signup")

        // Scored by the shipped rules like any interaction: a form lead qualifies, so the CRM gets it.
        let rules = try ScoringRulesSource(path: CRMSyncTests.root.appendingPathComponent("config/scoring.yaml").path).current
        let worker = ScoringWorker(redis: h.redis, rules: rules, timelineCap: 500, clock: { h.now })
        let run = Task { await worker.loop() }
        defer { run.cancel() }
        try await CRMSyncTests.eventually("Ann qualified") {
            try await h.redis.send("HEXISTS", Keys.customer(ann!), "qualifiedAt").int == 1
        }
        let tags = try await h.redis.send("SMEMBERS", "cust:{\(ann!)}:tags").strings
        XCTAssertTrue(tags.contains("lead:form"))
        try await CRMSyncTests.eventually("both leads queued for the CRM") {
            let touches = try await h.redis.send("XRANGE", Keys.crmStream, "-", "+").array ?? []
            return Set(touches.compactMap { $0.array?.last?.dictionary["customer"] }).count == 2
        }
    }

    static func push(_ client: any TestClientProtocol, _ body: String, source: String, secret: String, atMs: Int64, signed: Bool) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: "application/json"]
        if signed { headers[HTTPField.Name(CRMSignature.header)!] = CRMSignature.sign(secret: secret, timestamp: atMs / 1000, body: Array(body.utf8)) }
        return try await client.execute(uri: "/webhooks/leads/\(source)", method: .post, headers: headers, body: ByteBuffer(string: body))
    }


    func test_aSourceWithAnEmptySecret_isOff_andConfigRefusesAShortOne() throws {
        let off = try ConfigLoader(environment: [:]).load(yaml: "leads: { sources: [{ id: website, secret: \"${UNSET_SECRET:-}\" }] }")
        XCTAssertTrue(off.leads.sources.isEmpty, "no secret, no source: unsigned leads are never taken")
        XCTAssertThrowsError(try ConfigLoader(environment: [:]).load(yaml: "leads: { sources: [{ id: website, secret: short }] }")) { e in
            XCTAssertEqual((e as? ConfigError)?.path, "leads.sources[0].secret")
        }
    }
}
