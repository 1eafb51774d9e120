import Foundation
import HummingbirdTesting
import XCTest

/// Encodable responses keep their documented shape: members not reached yet are present as null.
final class ResponseShapeTests: XCTestCase {
    func test_absentValuesAreNull_notMissing() async throws {
        let h = try Harness()
        try await h.test { client in
            _ = try await client.send(.post, "/api/v1/tags", json: #"{"name":"vip"}"#)
            let created = try await client.send(.post, "/api/v1/campaigns", json: CampaignTests.campaignJSON(audience: "vip", channels: #"[{"channel":"sms","text":"hi"}]"#))
            XCTAssertEqual(created.status, .created, created.text)
            for key in ["audienceSize", "startAt", "startedAt", "endedAt"] {
                XCTAssertTrue(created.json[key] is NSNull, "\(key): \(created.text)")
            }
            XCTAssertTrue((created.json["progress"] as? [String: Any])?["etaSeconds"] is NSNull)
            XCTAssertEqual((created.json["definition"] as? [String: Any])?["name"] as? String, "Expo invite", "the definition as submitted")
            let members = try await client.get("/api/v1/tags/vip/customers")
            XCTAssertTrue(members.json["nextCursor"] is NSNull, members.text)
            let report = try await client.get("/api/v1/campaigns/\(created.json["id"] as? String ?? "")/report")
            XCTAssertTrue(report.json["audienceSize"] is NSNull, report.text)
            XCTAssertEqual((report.json["wecomTasks"] as? [Any])?.count, 0)
        }
    }
}
