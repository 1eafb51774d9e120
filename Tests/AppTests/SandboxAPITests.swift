import App
import Foundation
import GatewayCore
import Hummingbird
import HummingbirdTesting
import Outbound
import Store
import XCTest

final class SandboxAPITests: XCTestCase {
    func test_sandboxMessages_listWhatTheSandboxAdaptersRecorded() async throws {
        let h = try Harness()
        let catalog = try loadAdapters(config: h.config, environment: [:])
        let sender = AdapterSender(sandbox: SandboxOutbox(redis: h.redis, maxLen: 100), publicURL: "http://gw", clock: { 1_790_000_000_000 })
        let sms = await sender.send(OutboundPayload(messageId: "m-sms", to: "+14155552671", text: "code 4821"), via: catalog["sandbox-sms"]!)
        guard case .accepted = sms else { return XCTFail("\(sms)") }
        let wx = await sender.send(
            OutboundPayload(messageId: "m-wx", to: "oX1", template: "T1", variables: ["thing1": .string("Expo")]), via: catalog["sandbox-wechat-template"]!)
        guard case .accepted = wx else { return XCTFail("\(wx)") }
        try await h.test { client in
            let all = try await client.get("/api/v1/sandbox/messages")
            XCTAssertEqual(all.status, .ok)
            let messages = try XCTUnwrap(all.json["messages"] as? [[String: Any]])
            XCTAssertEqual(Set(messages.compactMap { $0["messageId"] as? String }), ["m-sms", "m-wx"])
            let sms = try await client.get("/api/v1/sandbox/messages?channel=sms&limit=5")
            let only = try XCTUnwrap(sms.json["messages"] as? [[String: Any]])
            XCTAssertEqual(only.count, 1)
            XCTAssertEqual(only.first?["renders"] as? String, "twilio-sms")
            XCTAssertEqual(only.first?["to"] as? String, "+14155552671")
            XCTAssertTrue((only.first?["request"] as? String ?? "").contains("Body=code%204821"))
            let bad = try await client.get("/api/v1/sandbox/messages?channel=fax")
            XCTAssertEqual(bad.status, .badRequest)
            XCTAssertEqual(bad.errorCode, "invalid_channel")
            let unauthorized = try await client.get("/api/v1/sandbox/messages", token: nil)
            XCTAssertEqual(unauthorized.status, .unauthorized)
        }
    }
}
