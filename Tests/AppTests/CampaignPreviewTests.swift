import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import XCTest
@testable import AdminAPI

/// `POST /campaigns/preview` and `GET /campaigns/{id}/preview`: each variant's content rendered for
/// one customer, with the variables that customer lacks; nothing is stored.
final class CampaignPreviewTests: XCTestCase {
    func test_eachVariantIsRenderedForTheCustomer_andMissingVariablesAreNamed() async throws {
        let h = try Harness()
        try await h.test { client in
            var ids = [String]()
            for (i, name) in ["Ada", ""].enumerated() {
                let e = try await client.send(
                    .post, "/api/v1/events", json: #"{"events":[{"id":"pv-\#(i)","type":"web.visit","identities":[{"type":"phone","value":"+861380000000\#(i)"}]}]}"#)
                let id = try XCTUnwrap(e.value?.lookup("results.0.customer")?.scalarText)
                if !name.isEmpty { _ = try await client.send(.patch, "/api/v1/customers/\(id)", json: #"{"profile":{"name":"\#(name)"}}"#) }
                ids.append(id)
            }
            _ = try await client.send(.post, "/api/v1/tags", json: #"{"name":"pv-empty"}"#)
            let campaign = #"{"name":"P","audience":"pv-empty","channels":[{"channel":"sms","text":"Hi {{profile.name}} ({{profile.city}})"}],"variants":[{"name":"A","weight":1},{"name":"B","weight":1,"content":{"sms":{"text":"Yo {{profile.name}}"}}}]}"#
            let named = try await client.send(.post, "/api/v1/campaigns/preview", json: #"{"campaign":\#(campaign),"customerId":"\#(ids[0])"}"#)
            XCTAssertEqual(named.status, .ok, named.text)
            XCTAssertEqual(named.value?.lookup("variants.0.channels.0.text")?.scalarText, "Hi Ada ()")
            XCTAssertEqual(named.value?.lookup("variants.0.channels.0.missing"), .array([.string("profile.city")]))
            XCTAssertEqual(named.value?.lookup("variants.1.channels.0.text")?.scalarText, "Yo Ada")
            XCTAssertEqual(named.value?.lookup("variants.1.channels.0.missing"), .array([]))

            let empty = try await client.send(.post, "/api/v1/campaigns/preview", json: #"{"campaign":\#(campaign)}"#)
            XCTAssertEqual(empty.value?.lookup("audienceSize"), .int(0))
            XCTAssertNil(empty.value?.lookup("customerId"), "an empty audience has nobody to render for")

            let broken = try await client.send(.post, "/api/v1/campaigns/preview", json: #"{"campaign":{"name":"P","audience":"a & (","channels":[{"channel":"sms","text":"x"}]}}"#)
            XCTAssertEqual(broken.status, .badRequest)
            let unknown = try await client.send(.post, "/api/v1/campaigns/preview", json: #"{"campaign":\#(campaign),"customerId":"01KZZZZZZZZZZZZZZZZZZZZZZZ"}"#)
            XCTAssertEqual(unknown.status, .notFound)

            _ = try await client.send(.post, "/api/v1/tags", json: #"{"name":"pv"}"#)
            _ = try await client.send(.post, "/api/v1/tags/pv/customers", json: #"{"customerIds":["\#(ids[1])"]}"#)
            let created = try await client.send(.post, "/api/v1/campaigns", json: campaign.replacingOccurrences(of: "pv-empty", with: "pv"))
            let id = try XCTUnwrap(created.value?.lookup("id")?.scalarText)
            let sampled = try await client.get("/api/v1/campaigns/\(id)/preview")
            XCTAssertEqual(sampled.value?.lookup("customerId")?.scalarText, ids[1], "without a customer, one of the audience")
            if h.redis.isCluster {
                // A cluster draws no estimate (it would visit every shard, as a count does): the exact count is given.
                XCTAssertEqual(sampled.value?.lookup("audienceSize")?.scalarText, "1")
            } else {
                XCTAssertNil(sampled.value?.lookup("audienceSize"), "drawn from the tag's members, without counting the whole audience")
            }
            let negated = try await client.send(
                .post, "/api/v1/campaigns/preview", json: #"{"campaign":\#(campaign.replacingOccurrences(of: "pv-empty", with: "!pv-empty"))}"#)
            XCTAssertEqual(negated.value?.lookup("audienceSize"), .int(2), "no set to draw from: the audience is evaluated, and counted")
            XCTAssertNotNil(negated.value?.lookup("customerId"))
            XCTAssertEqual(sampled.value?.lookup("variants.0.channels.0.missing"), .array([.string("profile.city"), .string("profile.name")]))
            let stored = try await client.get("/api/v1/campaigns")
            XCTAssertEqual(stored.value?.lookup("campaigns")?.arrayValue?.count, 1, "a preview stores no campaign")
        }
    }
}
