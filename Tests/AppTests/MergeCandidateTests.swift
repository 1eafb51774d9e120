import App
import Foundation
import GatewayCore
import HummingbirdTesting
import XCTest

/// An identity from the events API merges two customers only when it is verified and the caller may
/// merge; otherwise the pair becomes a merge candidate that a person accepts or rejects.
final class MergeCandidateTests: XCTestCase {
    static func customer(_ client: some TestClientProtocol, _ query: String) async throws -> String? {
        try await client.get("/api/v1/customers/lookup?\(query)").json["id"] as? String
    }

    func test_unverifiedCollision_isACandidate_acceptedMerges_rejectedIsNotProposedAgain() async throws {
        let h = try Harness()
        try await h.test { client in
            let key = try await AccessTests.key(client, role: "integration").key
            func events(_ json: String) async throws -> TestResponse {
                let r = try await client.send(.post, "/api/v1/events", json: json, token: key)
                XCTAssertEqual(r.status, .ok, r.text)
                return r
            }
            // The victim is known by phone, the attacker by email; a form names both.
            _ = try await events(#"{"events":[{"type":"web.visit","identity":{"type":"phone","value":"+8613800138111"}}]}"#)
            _ = try await events(#"{"events":[{"type":"web.visit","identity":{"type":"email","value":"mallory@example.com"}}]}"#)
            let victim = try await Self.customer(client, "phone=%2B8613800138111")
            let attacker = try await Self.customer(client, "email=mallory@example.com")
            _ = try await events(#"{"events":[{"type":"web.form_submit","identities":[{"type":"phone","value":"+8613800138111"},{"type":"email","value":"mallory@example.com"}]}]}"#)
            let phoneOwner = try await Self.customer(client, "phone=%2B8613800138111")
            let emailOwner = try await Self.customer(client, "email=mallory@example.com")
            XCTAssertEqual(phoneOwner, victim)
            XCTAssertEqual(emailOwner, attacker, "no merge on an unverified identity")
            XCTAssertNotEqual(victim, attacker)

            let list = try await client.get("/api/v1/merge-candidates")
            XCTAssertEqual(list.json["pending"] as? Int, 1)
            let candidate = try XCTUnwrap((list.json["candidates"] as? [[String: Any]])?.first)
            XCTAssertEqual(Set([candidate["customer"] as? String, candidate["other"] as? String]), Set([victim, attacker]))
            XCTAssertEqual((candidate["identity"] as? [String: Any])?["value"] as? String, "mallory@example.com")
            XCTAssertEqual(candidate["source"] as? String, "web.form_submit")
            XCTAssertEqual(candidate["state"] as? String, "pending")
            // The same collision again is not proposed twice.
            _ = try await events(#"{"events":[{"type":"web.form_submit","identities":[{"type":"phone","value":"+8613800138111"},{"type":"email","value":"mallory@example.com"}]}]}"#)
            let awaited1 = try await client.get("/api/v1/merge-candidates").json["pending"] as? Int
            XCTAssertEqual(awaited1, 1)

            // A marketer may look but not decide; the admin rejects it, and it stays rejected.
            let marketer = try await AccessTests.key(client, role: "marketer").key
            let id = try XCTUnwrap(candidate["id"] as? String)
            let awaited2 = try await client.get("/api/v1/merge-candidates", token: marketer).status
            XCTAssertEqual(awaited2, .ok)
            let awaited3 = try await client.send(.post, "/api/v1/merge-candidates/\(id)/accept", json: "{}", token: marketer).status
            XCTAssertEqual(awaited3, .forbidden)
            let rejected = try await client.send(.post, "/api/v1/merge-candidates/\(id)/reject", json: "{}")
            XCTAssertEqual(rejected.json["state"] as? String, "rejected")
            XCTAssertEqual(rejected.json["decidedBy"] as? String, "bootstrap")
            let awaited4 = try await client.send(.post, "/api/v1/merge-candidates/\(id)/accept", json: "{}").status
            XCTAssertEqual(awaited4, .conflict)
            _ = try await events(#"{"events":[{"type":"web.form_submit","identities":[{"type":"phone","value":"+8613800138111"},{"type":"email","value":"mallory@example.com"}]}]}"#)
            let awaited5 = try await client.get("/api/v1/merge-candidates").json["pending"] as? Int
            XCTAssertEqual(awaited5, 0, "a rejected pair is not proposed again")

            // Another pair, accepted: the two become one, as a verified identity would have made them.
            _ = try await events(#"{"events":[{"type":"web.visit","identity":{"type":"phone","value":"+8613800138222"}}]}"#)
            _ = try await events(#"{"events":[{"type":"web.visit","identity":{"type":"email","value":"bo@example.com"}}]}"#)
            _ = try await events(#"{"events":[{"type":"web.form_submit","identities":[{"type":"phone","value":"+8613800138222"},{"type":"email","value":"bo@example.com"}]}]}"#)
            let secondList = try await client.get("/api/v1/merge-candidates")
            let second = try XCTUnwrap((secondList.json["candidates"] as? [[String: Any]])?.first?["id"] as? String)
            let accepted = try await client.send(.post, "/api/v1/merge-candidates/\(second)/accept", json: "{}")
            XCTAssertEqual(accepted.json["state"] as? String, "accepted", accepted.text)
            let survivor = try XCTUnwrap(accepted.json["survivor"] as? String)
            let awaited6 = try await Self.customer(client, "phone=%2B8613800138222")
            XCTAssertEqual(awaited6, survivor)
            let awaited7 = try await Self.customer(client, "email=bo@example.com")
            XCTAssertEqual(awaited7, survivor)
            let audit = try await client.get("/api/v1/audit?actor=bootstrap")
            XCTAssertTrue((audit.json["entries"] as? [[String: Any]] ?? []).contains { $0["route"] as? String == "/api/v1/merge-candidates/{id}/accept" })

            // A verified identity merges at once.
            _ = try await events(#"{"events":[{"type":"web.visit","identity":{"type":"phone","value":"+8613800138333"}}]}"#)
            _ = try await events(#"{"events":[{"type":"web.visit","identity":{"type":"email","value":"cy@example.com"}}]}"#)
            _ = try await events(#"{"events":[{"type":"app.login","identities":[{"type":"phone","value":"+8613800138333","verified":true},{"type":"email","value":"cy@example.com","verified":true}]}]}"#)
            let awaited8 = try await Self.customer(client, "phone=%2B8613800138333")
            let awaited9 = try await Self.customer(client, "email=cy@example.com")
            XCTAssertEqual(awaited8, awaited9)
            let bad = try await client.send(.post, "/api/v1/events", json: #"{"events":[{"type":"web.visit","identities":[{"type":"email","value":"x@example.com","verified":"yes"}]}]}"#, token: key)
            XCTAssertEqual(bad.errorCode, "invalid_event")
        }
    }

    func test_oneEventCollidingWithTwoCustomers_makesTwoCandidates() async throws {
        let h = try Harness()
        try await h.test { client in
            for (t, v) in [("phone", "+8613800138444"), ("email", "one@example.com"), ("email", "two@example.com")] {
                _ = try await client.send(.post, "/api/v1/events", json: #"{"events":[{"type":"web.visit","identity":{"type":"\#(t)","value":"\#(v)"}}]}"#)
            }
            let r = try await client.send(.post, "/api/v1/events", json: #"{"events":[{"type":"web.form_submit","identities":[{"type":"phone","value":"+8613800138444"},{"type":"email","value":"one@example.com"},{"type":"email","value":"two@example.com"}]}]}"#)
            XCTAssertEqual(r.status, .ok, r.text)
            let list = try await client.get("/api/v1/merge-candidates")
            let candidates = try XCTUnwrap(list.json["candidates"] as? [[String: Any]])
            XCTAssertEqual(candidates.count, 2)
            XCTAssertEqual(Set(candidates.compactMap { ($0["identity"] as? [String: Any])?["value"] as? String }), ["one@example.com", "two@example.com"])
            XCTAssertEqual(Set(candidates.compactMap { $0["id"] as? String }).count, 2, "each candidate has its own id")
        }
    }
}
