import App
import FakeProviders
import Foundation
import GatewayCore
import Hummingbird
import HummingbirdTesting
import Outbound
import Store
import XCTest

/// Customer-service messages of every type (text, image, news, mini-program card) and template
/// messages that open a mini-program, through the WeChat fake; media uploaded once per file; the
/// session showing both directions.
final class RichOutboundTests: XCTestCase {
    /// A JPEG as far as WeChat's type check goes (its magic number), of `size` bytes.
    static func jpeg(_ size: Int, seed: UInt8 = 1) -> [UInt8] { [0xFF, 0xD8, 0xFF, 0xE0] + [UInt8](repeating: seed, count: size - 4) }

    func rig() async throws -> OutboundEngineTests.Rig {
        let fakes = try await ProviderFakes.start()
        let h = try Harness { config in
            config.outbound.channels = ["wechat": "wechat-template", "sms": "sandbox-sms", "email": "sandbox-email"]
            config.outbound.extraAdapters = ["wechat-custom"]
            if let i = config.accounts.firstIndex(where: { $0.id == "demo" }) { config.accounts[i].appSecret = "demo-app-secret" }
        }
        h.adapterEnvironment = fakes.environment
        fakes.wechat.addAccount(appId: h.config.account("demo")!.appId, secret: "demo-app-secret")
        return OutboundEngineTests.Rig(h: h, fakes: fakes, store: MessageStore(redis: h.redis))
    }

    static func upload(_ client: some TestClientProtocol, _ bytes: [UInt8], type: String) async throws -> TestResponse {
        try await client.execute(
            uri: "/api/v1/accounts/demo/media?type=\(type)", method: .post,
            headers: [.authorization: "Bearer \(Harness.adminToken)", .contentType: "image/jpeg"], body: ByteBuffer(bytes: bytes))
    }

    func test_mediaUpload_isCachedByContent_andBadFilesAreRefused() async throws {
        let rig = try await rig()
        try await rig.h.test { client in
            let first = try await Self.upload(client, Self.jpeg(2_000), type: "image")
            XCTAssertEqual(first.status, .created, first.text)
            let id = try XCTUnwrap(first.json["mediaId"] as? String)
            XCTAssertEqual(first.json["cached"] as? Bool, false)
            let again = try await Self.upload(client, Self.jpeg(2_000), type: "image")
            XCTAssertEqual(again.status, .ok)
            XCTAssertEqual(again.json["mediaId"] as? String, id, "the same file: the cached id")
            XCTAssertEqual(again.json["cached"] as? Bool, true)
            let other = try await Self.upload(client, Self.jpeg(2_000, seed: 2), type: "image")
            XCTAssertNotEqual(other.json["mediaId"] as? String, id)
            let thumb = try await Self.upload(client, Self.jpeg(5_000), type: "thumb")
            XCTAssertEqual(thumb.status, .created, "a thumb's id comes back as thumb_media_id")
            XCTAssertNotNil(thumb.json["mediaId"] as? String)

            let png = try await Self.upload(client, [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0], type: "thumb")
            XCTAssertEqual(png.errorCode, "invalid_media", "a thumb is a JPEG")
            let text = try await Self.upload(client, Array("not an image".utf8), type: "image")
            XCTAssertEqual(text.errorCode, "invalid_media")
            let big = try await Self.upload(client, Self.jpeg(65 * 1024), type: "thumb")
            XCTAssertEqual(big.status, .contentTooLarge)
            let kind = try await Self.upload(client, Self.jpeg(100), type: "video")
            XCTAssertEqual(kind.errorCode, "invalid_type")
            rig.fakes.ledger.inject("wechat.media.upload", FakeAnswer(json: #"{"errcode":40005,"errmsg":"invalid file type"}"#))
            let refused = try await Self.upload(client, Self.jpeg(3_000, seed: 3), type: "image")
            XCTAssertEqual(refused.errorCode, "wechat_refused")
        }
        XCTAssertEqual(rig.fakes.ledger.calls("wechat.media.uploaded"), 3, "two images and a thumb reached WeChat; repeats and bad files did not")
        await rig.fakes.stop()
    }

    func test_everyCustomServiceType_isSentInsideTheWindow_andTheSessionReadsBothWays() async throws {
        let rig = try await rig()
        let engine = try rig.startEngine()
        defer { engine.cancel() }
        try await rig.h.test { client in
            // The follower writes: the 48 h window opens.
            let inbound = try rig.h.builder("demo").post(
                xml: SampleCallbacks.text(to: "gh", from: "oRich", content: "booth?", msgId: "9001", createTime: rig.h.nowSeconds),
                timestamp: rig.h.nowSeconds, nonce: freshNonce(), encrypt: false)
            _ = try await client.callback(inbound)
            let lookup = try await client.get("/api/v1/customers/lookup?account=demo&openid=oRich")
            let customer = try XCTUnwrap(lookup.json["id"] as? String)
            let imageUpload = try await Self.upload(client, Self.jpeg(4_000), type: "image")
            let image = try XCTUnwrap(imageUpload.json["mediaId"] as? String)
            let thumbUpload = try await Self.upload(client, Self.jpeg(3_000, seed: 9), type: "thumb")
            let thumb = try XCTUnwrap(thumbUpload.json["mediaId"] as? String)

            let bodies = [
                #"{"type":"image","mediaId":"\#(image)"}"#,
                #"{"type":"news","articles":[{"title":"Booth map","description":"Hall 3","url":"https://expo.example.com/map","picUrl":"https://expo.example.com/map.jpg"}]}"#,
                #"{"type":"miniprogram","title":"Register","appId":"wx286b93c14bbf93aa","pagePath":"pages/register/index","thumbMediaId":"\#(thumb)"}"#,
                #"{"type":"text","text":"See you at booth A12"}"#,
            ]
            var ids = [String]()
            for content in bodies {
                let m = try await OutboundEngineTests.post(
                    client, #"{"channel":"wechat","adapter":"wechat-custom","account":"demo","customerId":"\#(customer)","content":\#(content)}"#)
                XCTAssertEqual(m.status, .accepted, "\(content): \(m.body)")
                ids.append(m.id)
                _ = try await rig.waitFor(m.id, [.sent])
            }
            let sent = rig.fakes.ledger.deliveries("wechat.custom")
            XCTAssertEqual(sent.map { $0.body["msgtype"] ?? "" }, ["image", "news", "miniprogrampage", "text"])
            XCTAssertEqual(sent[0].body["image"], #"{"media_id":"\#(image)"}"#)
            XCTAssertEqual(sent[2].body["miniprogrampage"], #"{"appid":"wx286b93c14bbf93aa","pagepath":"pages/register/index","thumb_media_id":"\#(thumb)","title":"Register"}"#)
            XCTAssertEqual(sent[3].body["text"], #"{"content":"See you at booth A12"}"#)

            let shown = try await client.get("/api/v1/messages/\(ids[2])")
            XCTAssertEqual((shown.json["content"] as? [String: Any])?["msgtype"] as? String, "miniprogrampage")

            // The conversation, both ways.
            let session = try await client.get("/api/v1/sessions/demo/oRich")
            let messages = (session.json["messages"] as? [[String: Any]]) ?? []
            XCTAssertEqual(messages.map { "\($0["direction"] ?? "")/\($0["type"] ?? "")" },
                ["in/message.text", "out/custom.image", "out/custom.news", "out/custom.miniprogrampage", "out/custom.text"], "\(session.text)")

            // An unknown media id: WeChat's 40007, a permanent failure.
            let stale = try await OutboundEngineTests.post(
                client, #"{"channel":"wechat","adapter":"wechat-custom","account":"demo","customerId":"\#(customer)","content":{"type":"image","mediaId":"expiredMedia"}}"#)
            let failed = try await rig.waitFor(stale.id, [.failed])
            XCTAssertTrue(failed.lastError?.contains("40007") == true, failed.lastError ?? "")

            // No window: not sent at all.
            let outside = try await OutboundEngineTests.post(
                client, #"{"channel":"wechat","adapter":"wechat-custom","account":"demo","to":"oSilent","content":{"type":"image","mediaId":"\#(image)"}}"#)
            let skipped = try await rig.waitFor(outside.id, [.skipped])
            XCTAssertEqual(skipped.reason, "outside_session_window")
        }
        await rig.fakes.stop()
    }

    func test_templateOpensAMiniProgram_andBadContentIsRefused() async throws {
        let rig = try await rig()
        let engine = try rig.startEngine()
        defer { engine.cancel() }
        try await rig.h.test { client in
            let m = try await OutboundEngineTests.post(
                client, #"{"channel":"wechat","account":"demo","to":"oTpl","template":"T1","link":"https://expo.example.com/t","variables":{"thing1":"Expo"},"miniprogram":{"appId":"wx286b93c14bbf93aa","pagePath":"pages/ticket/index?id=42"}}"#)
            XCTAssertEqual(m.status, .accepted, "\(m.body)")
            _ = try await rig.waitFor(m.id, [.sent])
            let sent = try XCTUnwrap(rig.fakes.ledger.deliveries("wechat.template").last)
            XCTAssertEqual(sent.body["miniprogram"], #"{"appid":"wx286b93c14bbf93aa","pagepath":"pages/ticket/index?id=42"}"#)
            XCTAssertEqual(sent.body["url"], "https://expo.example.com/t")

            let bad: [(String, String)] = [
                (#"{"channel":"wechat","adapter":"wechat-custom","account":"demo","to":"o1","content":{"type":"news","articles":[{"title":"a","url":"https://e.com"},{"title":"b","url":"https://e.com"}]}}"#, "invalid_content"),
                (#"{"channel":"wechat","adapter":"wechat-custom","account":"demo","to":"o1","text":"x","content":{"type":"image","mediaId":"M"}}"#, "invalid_body"),
                (#"{"channel":"wechat","account":"demo","to":"o1","template":"T","content":{"type":"image","mediaId":"M"}}"#, "invalid_body"),
                (#"{"channel":"wechat","adapter":"wechat-custom","account":"demo","to":"o1","miniprogram":{"appId":"wx1","pagePath":"p"}}"#, "invalid_body"),
                (#"{"channel":"wechat","account":"demo","to":"o1","template":"T","miniprogram":{"appId":"nope","pagePath":"p"}}"#, "invalid_content"),
                (#"{"channel":"wechat","adapter":"wechat-custom","account":"demo","to":"o1","content":{"type":"miniprogram","title":"t","appId":"wx286b93c14bbf93aa","pagePath":"p"}}"#, "invalid_body"),
            ]
            for (body, code) in bad {
                let r = try await client.send(.post, "/api/v1/messages", json: body)
                XCTAssertEqual(r.errorCode, code, "\(body): \(r.text)")
            }
        }
        await rig.fakes.stop()
    }
}
