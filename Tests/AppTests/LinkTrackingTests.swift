import App
import Campaigns
import FakeProviders
import Foundation
import GatewayCore
import HTTPTypes
import HummingbirdTesting
import RedisClient
import Store
import XCTest

/// Tracked links and open pixels of a campaign (`trackLinks: true`), on a real Redis.
extension CampaignTests {
    static let trackedChannels = """
        [{"channel":"wechat","account":"demo","template":"TPL-EXPO","link":"https://example.com/expo?a=1&b=2","data":{"first":"Hi"}},
         {"channel":"email","subject":"Expo","html":"<html><body><a href=\\"https://example.com/expo?a=1&amp;b=2\\">Expo</a> <a href='https://example.com/agenda'>agenda</a></body></html>",
          "text":"Expo: https://example.com/expo?a=1&b=2. Agenda: https://example.com/agenda"}]
        """

    /// Every message of the campaign in Redis: id -> hash.
    static func messages(_ h: Harness) async throws -> [String: [String: String]] {
        var out = [String: [String: String]]()
        for key in try await h.keys("msg:{*") {
            let hash = try await h.redis.send("HGETALL", key).dictionary
            if let id = hash["id"] { out[id] = hash }
        }
        return out
    }

    static func path(_ url: String, base: String) -> String { String(url.dropFirst(base.count)) }

    func test_trackedLinks_redirect_countClicksAndOpensOnce_andRefuseForgedOrExpiredTokens() async throws {
        let rig = try await rig()
        let follower = try await rig.customer("o-click", tags: ["vip"])
        let reader = try await rig.customer(nil, email: "reader@example.com", tags: ["vip"])
        let senders = try rig.runSenders()
        defer { senders.cancel() }
        let base = rig.h.config.outbound.publicURL
        try await rig.h.test { client in
            let created = try await client.send(
                .post, "/api/v1/campaigns", json: Self.campaignJSON(audience: "vip", channels: Self.trackedChannels, extra: #","trackLinks":true"#))
            let id = try XCTUnwrap(created.json["id"] as? String, created.text)
            _ = try await client.send(.post, "/api/v1/campaigns/\(id)/start", json: "{}")
            _ = try await Self.waitForState(client, id, "completed")
            senders.cancel()

            let messages = try await Self.messages(rig.h)
            let wechat = try XCTUnwrap(messages.values.first { $0["customerId"] == follower })
            let email = try XCTUnwrap(messages.values.first { $0["customerId"] == reader })
            // What went out carries tracked links only; the originals stay with the message.
            let link = try XCTUnwrap(wechat["link"])
            XCTAssertTrue(link.hasPrefix("\(base)/l/"), link)
            // 31 characters; 34 on a cluster, whose message ids carry their slot (MessageId).
            XCTAssertEqual(link.count, base.count + 3 + (rig.h.redis.isCluster ? 34 : 31), "a short token")
            XCTAssertFalse(link.contains("example.com"), "nothing readable in the token")
            XCTAssertEqual(wechat["links"], #"["https://example.com/expo?a=1&b=2"]"#)
            let html = try XCTUnwrap(email["html"])
            XCTAssertFalse(html.contains("https://example.com"), html)
            XCTAssertTrue(html.contains("\(base)/o/") && html.contains(".gif\" width=\"1\""), "an open pixel: \(html)")
            XCTAssertEqual(email["links"], #"["https://example.com/expo?a=1&b=2","https://example.com/agenda"]"#)
            let text = try XCTUnwrap(email["text"])
            XCTAssertTrue(text.hasPrefix("Expo: \(base)/l/") && text.contains(". Agenda: \(base)/l/"), "trailing punctuation stays outside: \(text)")
            let wechatGot = rig.fakes.ledger.deliveries.first { $0.provider.hasPrefix("wechat") }
            XCTAssertEqual(wechatGot?.body["url"], link, "WeChat got the tracked link")

            func click(_ url: String, method: HTTPRequest.Method = .get, agent: String? = nil) async throws -> TestResponse {
                var headers: HTTPFields = [:]
                if let agent { headers[.userAgent] = agent }
                return try await client.execute(uri: Self.path(url, base: base), method: method, headers: headers)
            }
            let human = "Mozilla/5.0 (iPhone) MicroMessenger/8.0"
            let first = try await click(link, agent: human)
            XCTAssertEqual(first.status, .found)
            XCTAssertEqual(first.headers[.location], "https://example.com/expo?a=1&b=2")
            _ = try await click(link, agent: human)  // a repeat within the minute
            _ = try await click(link, method: .head)
            let scanned = try await click(link, agent: "Mozilla/5.0 (compatible; Barracuda Sentinel)")
            XCTAssertEqual(scanned.status, .found, "a scanner is redirected too")
            var report = try await client.get("/api/v1/campaigns/\(id)/report").json
            var wechatStats = try XCTUnwrap((report["channels"] as? [String: [String: Int]])?["wechat"])
            XCTAssertEqual(wechatStats["clicks"], 1, "the repeat, the HEAD and the scanner are not counted")
            XCTAssertEqual(wechatStats["clicked"], 1)

            // After the window a click counts again, but the message was already clicked.
            let guards = try await rig.h.keys("eng:*")
            let guardKey = try XCTUnwrap(guards.first)
            _ = try await rig.h.redis.send("DEL", guardKey)
            _ = try await click(link, agent: human)
            report = try await client.get("/api/v1/campaigns/\(id)/report").json
            wechatStats = try XCTUnwrap((report["channels"] as? [String: [String: Int]])?["wechat"])
            XCTAssertEqual(wechatStats["clicks"], 2)
            XCTAssertEqual(wechatStats["clicked"], 1)

            // The open pixel.
            let pixelStart = try XCTUnwrap(html.range(of: "\(base)/o/"))
            let pixel = String(html[pixelStart.lowerBound...].prefix { $0 != "\"" })
            let open = try await click(pixel, agent: "Mozilla/5.0 (Macintosh) AppleWebKit")
            XCTAssertEqual(open.status, .ok)
            XCTAssertEqual(open.headers[.contentType], "image/gif")
            report = try await client.get("/api/v1/campaigns/\(id)/report").json
            let emailStats = try XCTUnwrap((report["channels"] as? [String: [String: Int]])?["email"])
            XCTAssertEqual(emailStats["opened"], 1)
            XCTAssertEqual(emailStats["clicked"] ?? 0, 0)
            XCTAssertTrue((report["notes"] as? [String])?.first?.contains("approximate") == true)

            // Forged, swapped and unknown tokens: a plain 404 page.
            let token = String(link.dropFirst(base.count + 3))
            var forged = Array(token)
            forged[10] = forged[10] == "A" ? "B" : "A"
            for uri in ["/l/\(String(forged))", "/l/short", "/o/\(token).gif", "/l/" + Self.path(pixel, base: base).dropFirst(3).dropLast(4)] {
                let r = try await client.execute(uri: uri, method: .get, headers: [:])
                XCTAssertEqual(r.status, .notFound, uri)
                XCTAssertEqual(r.headers[.contentType], "text/html; charset=utf-8", uri)
            }
            // A link outlives its message's retention by nothing.
            rig.h.now += EngagementStore.linkLifetimeMs + 1
            let expired = try await click(link, agent: human)
            XCTAssertEqual(expired.status, .notFound)
        }
        // The clicks are the recipient's interactions: timeline and stream:inbound (for scoring).
        let timeline = try await rig.customers.timeline(id: follower, limit: 10)
        XCTAssertEqual(timeline.filter { $0.contains("\"message.click\"") }.count, 2)
        XCTAssertTrue(timeline.contains { $0.contains(#""url":"https://example.com/expo?a=1&b=2""#) })
        let kinds = try await rig.h.inboundEntries().filter { $0["source"] == "link" }.compactMap { $0["type"] }
        XCTAssertEqual(kinds.sorted(), ["message.click", "message.click", "message.open"])
    }

    func test_trackLinks_withoutALinkSecret_isRefused() async throws {
        let rig = try await rig { $0.outbound.linkSecret = nil }
        try await rig.customer("o-a", tags: ["vip"])
        try await rig.h.test { client in
            let r = try await client.send(
                .post, "/api/v1/campaigns", json: Self.campaignJSON(audience: "vip", channels: Self.wechatThenSMS, extra: #","trackLinks":true"#))
            XCTAssertEqual(r.status, .badRequest)
            XCTAssertTrue(r.text.contains("trackLinks"), r.text)
        }
    }
}
