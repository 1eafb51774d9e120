import App
import FakeProviders
import Foundation
import GatewayCore
import Hummingbird
import HummingbirdTesting
import Outbound
import XCTest

/// QR codes per scene: issued through `qrcode/create` (the WeChat fake), applied to scans and
/// subscribes at once, counted per scene, drawn as PNGs.
final class QRCodeTests: XCTestCase {
    func test_permanentAndTemporaryCodes_comeFromWeChat_andDrawAsPNG() async throws {
        let (h, fakes) = try await Harness.connectedToWeChat()
        try await h.test { client in
            let permanent = try await client.send(
                .post, "/api/v1/accounts/demo/qrcodes", json: #"{"scene":"expo2026-booth-a","tags":["source:expo-2026","booth:a"],"owner":"alice","permanent":true}"#)
            XCTAssertEqual(permanent.status, .created, permanent.text)
            let ticket = try XCTUnwrap(permanent.json["ticket"] as? String)
            let issued = try XCTUnwrap(fakes.wechat.qrCode(ticket: ticket))
            XCTAssertEqual(issued.scene, "expo2026-booth-a")
            XCTAssertNil(issued.expiresAtMs, "QR_LIMIT_STR_SCENE")
            XCTAssertEqual(permanent.json["url"] as? String, issued.url)
            XCTAssertEqual(permanent.json["permanent"] as? Bool, true)
            XCTAssertEqual(permanent.json["sandbox"] as? Bool, false)
            XCTAssertEqual(permanent.json["owner"] as? String, "alice")
            XCTAssertEqual(permanent.json["imageUrl"] as? String, "/api/v1/accounts/demo/qrcodes/expo2026-booth-a.png")

            let again = try await client.send(.post, "/api/v1/accounts/demo/qrcodes", json: #"{"scene":"expo2026-booth-a","tags":["booth:a"],"permanent":true}"#)
            XCTAssertEqual(again.status, .ok, "posting a scene again updates it")
            XCTAssertEqual(again.json["ticket"] as? String, ticket, "WeChat returns the same permanent code")
            XCTAssertEqual(again.json["tags"] as? [String], ["booth:a"])

            let temporary = try await client.send(.post, "/api/v1/accounts/demo/qrcodes", json: #"{"scene":"webinar-0312","expiresInSeconds":2592000}"#)
            XCTAssertEqual(temporary.status, .created, temporary.text)
            let tempCode = try XCTUnwrap(fakes.wechat.qrCode(ticket: temporary.json["ticket"] as? String ?? ""))
            let lifetime = tempCode.expiresAtMs.map { ($0 - Int64(Date().timeIntervalSince1970 * 1000) + 999) / 1000 }
            XCTAssertEqual(lifetime, 2_592_000, "QR_STR_SCENE with the asked lifetime")
            XCTAssertEqual(temporary.json["expiresAt"] as? String, "2026-10-21T14:13:20.000Z")
            XCTAssertEqual(temporary.json["expired"] as? Bool, false)

            let png = try await client.get("/api/v1/accounts/demo/qrcodes/expo2026-booth-a.png")
            XCTAssertEqual(png.status, .ok)
            XCTAssertEqual(png.headers[.contentType], "image/png")
            let bytes = [UInt8](Data(buffer: png.body))
            try PNGCheck.assertQRCode(bytes, encodes: issued.url)

            let one = try await client.get("/api/v1/accounts/demo/qrcodes/webinar-0312")
            XCTAssertEqual(one.json["scene"] as? String, "webinar-0312")
            let missing = try await client.get("/api/v1/accounts/demo/qrcodes/nope.png")
            XCTAssertEqual(missing.status, .notFound)
        }
        XCTAssertEqual(fakes.ledger.calls("wechat.qrcode.create"), 3)
        await fakes.stop()
    }

    func test_badRequestsAndWeChatRefusals_storeNothing() async throws {
        let (h, fakes) = try await Harness.connectedToWeChat()
        try await h.test { client in
            let cases: [(String, String, String)] = [
                ("demo", #"{"scene":"has space","permanent":true}"#, "invalid_scene"),
                ("demo", #"{"scene":"a","permanent":true,"expiresInSeconds":60}"#, "invalid_expiry"),
                ("demo", #"{"scene":"a"}"#, "invalid_expiry"),
                ("demo", #"{"scene":"a","expiresInSeconds":2592001}"#, "invalid_expiry"),
                ("demo", #"{"scene":"a","permanent":true,"tags":["bad tag"]}"#, "invalid_tags"),
                ("demo", #"{"scene":"a","permanent":true,"owner":"x y"}"#, "invalid_owner"),
                ("corp", #"{"scene":"a","permanent":true}"#, "wrong_platform"),
                ("plain", #"{"scene":"a","permanent":true}"#, "no_app_secret"),
                ("demo", #"{"scene":1}"#, "invalid_body"),
            ]
            for (account, body, code) in cases {
                let r = try await client.send(.post, "/api/v1/accounts/\(account)/qrcodes", json: body)
                XCTAssertEqual(r.errorCode, code, "\(account) \(body): \(r.text)")
            }
            fakes.ledger.inject("wechat.qrcode.create", FakeAnswer(json: #"{"errcode":45009,"errmsg":"reach max api daily quota limit"}"#))
            let quota = try await client.send(.post, "/api/v1/accounts/demo/qrcodes", json: #"{"scene":"a","permanent":true}"#)
            XCTAssertEqual(quota.status, .tooManyRequests)
            XCTAssertEqual(quota.errorCode, "wechat_quota")
            fakes.ledger.inject("wechat.qrcode.create", FakeAnswer(json: #"{"errcode":40097,"errmsg":"invalid args"}"#))
            let refused = try await client.send(.post, "/api/v1/accounts/demo/qrcodes", json: #"{"scene":"a","permanent":true}"#)
            XCTAssertEqual(refused.status, .badGateway)
            XCTAssertEqual(refused.errorCode, "wechat_refused")
            let list = try await client.get("/api/v1/accounts/demo/qrcodes")
            XCTAssertEqual((list.json["scenes"] as? [[String: Any]])?.compactMap { $0["source"] as? String }, ["config"], "only the config file's scene")
            let nobody = try await client.get("/api/v1/accounts/nobody/qrcodes")
            XCTAssertEqual(nobody.status, .notFound)
        }
        let stored = try await h.redis.send("EXISTS", Keys.qrScenes(account: "demo")).int
        XCTAssertEqual(stored, 0)
        await fakes.stop()
    }

    func test_scansApplyTagsAndOwnerAtOnce_andTheReportCountsPerScene() async throws {
        let h = try Harness()  // no WeChat API configured: the sandbox issues the codes
        let demo = h.config.account("demo")!
        @Sendable func event(_ from: String, _ event: String, _ key: String? = nil) -> CallbackBuilder.Request {
            try! h.builder("demo").post(
                xml: SampleCallbacks.event(to: "gh", from: from, event: event, eventKey: key, createTime: h.nowSeconds), timestamp: h.nowSeconds,
                nonce: freshNonce(), encrypt: false)
        }
        try await h.test { client in
            let a = try await client.send(.post, "/api/v1/accounts/demo/qrcodes", json: #"{"scene":"booth-a","tags":["source:expo-2026","booth:a"],"owner":"alice","permanent":true}"#)
            XCTAssertEqual(a.status, .created, a.text)
            XCTAssertEqual(a.json["sandbox"] as? Bool, true)
            XCTAssertNil(a.json["showUrl"] as? String, "the sandbox has no WeChat image")
            let b = try await client.send(.post, "/api/v1/accounts/demo/qrcodes", json: #"{"scene":"bob-card","tags":["rep:bob"],"owner":"bob","permanent":true}"#)
            XCTAssertEqual(b.status, .created)

            let r8827 = try await client.callback(event("oA", "subscribe", "qrscene_booth-a"))
            XCTAssertEqual(r8827.status, .ok)
            let r44539 = try await client.callback(event("oB", "SCAN", "booth-a"))
            XCTAssertEqual(r44539.status, .ok)
            let r94264 = try await client.callback(event("oA", "SCAN", "bob-card"))
            XCTAssertEqual(r94264.status, .ok)
            let r15155 = try await client.callback(event("oC", "subscribe", "qrscene_expo2026"))
            XCTAssertEqual(r15155.status, .ok, "a config-file scene")
            let r44601 = try await client.callback(event("oA", "unsubscribe"))
            XCTAssertEqual(r44601.status, .ok)

            let customerA = try await client.get("/api/v1/customers/lookup?account=demo&openid=oA").json
            XCTAssertEqual(Set(customerA["tags"] as? [String] ?? []), ["source:expo-2026", "booth:a", "rep:bob"])
            let idA = try XCTUnwrap(customerA["id"] as? String)
            let ownerA = try await h.redis.send("HGET", Keys.customer(idA), "owner").string
            XCTAssertEqual(ownerA, "alice", "the first scene's owner is kept")
            let lookupB = try await client.get("/api/v1/customers/lookup?account=demo&openid=oB")
            let idB = try XCTUnwrap(lookupB.json["id"] as? String)
            let ownerB = try await h.redis.send("HGET", Keys.customer(idB), "owner").string
            XCTAssertEqual(ownerB, "alice")
            let indexed = try await h.redis.send("SISMEMBER", h.shard(idB).key("tag", "booth:a"), idB).int
            XCTAssertEqual(indexed, 1, "the audience index has it")

            let report = try await client.get("/api/v1/accounts/demo/qrcodes").json
            let scenes = Dictionary(uniqueKeysWithValues: (report["scenes"] as? [[String: Any]] ?? []).map { ($0["scene"] as? String ?? "", $0) })
            func counts(_ s: String) -> [Int] {
                let c = scenes[s]?["counts"] as? [String: Any] ?? [:]
                return ["scans", "subscribes", "unsubscribes", "net"].map { c[$0] as? Int ?? -1 }
            }
            XCTAssertEqual(counts("booth-a"), [2, 1, 1, 0], "a subscribe and a scan; oA subscribed through it and left")
            XCTAssertEqual(counts("bob-card"), [1, 0, 0, 0])
            XCTAssertEqual(counts("expo2026"), [1, 1, 0, 1])
            XCTAssertEqual(scenes["expo2026"]?["source"] as? String, "config")
            XCTAssertEqual((report["totals"] as? [String: Any])?["scans"] as? Int, 4)

            // Deleting a scene stops applying it; its counts stay in the report.
            let deleted = try await client.send(.delete, "/api/v1/accounts/demo/qrcodes/bob-card", json: "")
            XCTAssertEqual(deleted.status, .noContent)
            let r25684 = try await client.callback(event("oD", "SCAN", "bob-card"))
            XCTAssertEqual(r25684.status, .ok)
            let d = try await client.get("/api/v1/customers/lookup?account=demo&openid=oD").json
            XCTAssertEqual(d["tags"] as? [String], [])
            let after = try await client.get("/api/v1/accounts/demo/qrcodes").json
            let bob = (after["scenes"] as? [[String: Any]])?.first { $0["scene"] as? String == "bob-card" }
            XCTAssertEqual(bob?["source"] as? String, "deleted")
            XCTAssertEqual((bob?["counts"] as? [String: Any])?["scans"] as? Int, 2)
        }
        _ = demo
    }
}

/// Checks a PNG the gateway drew: chunk CRCs, a 1-bit greyscale IHDR, and (inflating its stored
/// deflate blocks with Python's zlib, an independent decoder) the three finder patterns of a QR code.
enum PNGCheck {
    static func assertQRCode(_ png: [UInt8], encodes url: String, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], file: file, line: line)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("png-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("code.png")
        try Data(png).write(to: path)
        let script = """
            import struct, sys, zlib
            data = open(sys.argv[1], 'rb').read()
            pos, idat, ihdr = 8, b'', None
            while pos < len(data):
                n, = struct.unpack('>I', data[pos:pos+4]); kind = data[pos+4:pos+8]; body = data[pos+8:pos+8+n]
                crc, = struct.unpack('>I', data[pos+8+n:pos+12+n])
                assert zlib.crc32(kind + body) & 0xffffffff == crc, 'crc'
                if kind == b'IHDR': ihdr = struct.unpack('>IIBBBBB', body)
                if kind == b'IDAT': idat += body
                pos += 12 + n
            w, h, depth, color = ihdr[0], ihdr[1], ihdr[2], ihdr[3]
            assert (depth, color) == (1, 0) and w == h, 'ihdr'
            raw = zlib.decompress(idat); stride = (w + 7) // 8 + 1
            def black(x, y): return not (raw[y * stride + 1 + x // 8] >> (7 - x % 8)) & 1
            # quiet zone 4 modules of 8 px; a finder is 7 modules: dark ring, light ring, 3x3 dark core
            m = lambda x, y: black(4 * 8 + x * 8 + 4, 4 * 8 + y * 8 + 4)
            mods = (w // 8) - 8
            for ox, oy in [(0, 0), (mods - 7, 0), (0, mods - 7)]:
                ring = [m(ox + i, oy) for i in range(7)] + [m(ox, oy + i) for i in range(7)]
                assert all(ring), 'outer ring'
                assert not m(ox + 1, oy + 1), 'light ring'
                assert all(m(ox + 2 + i, oy + 2 + j) for i in range(3) for j in range(3)), 'core'
            assert not black(0, 0), 'quiet zone'
            print(mods)
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script, path.path]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, text, file: file, line: line)
        // Version 1 is 21 modules, each version 4 more; a ~35-byte URL needs version 3 at level M.
        XCTAssertTrue(["25\n", "29\n", "33\n"].contains(text), "modules: \(text) for \(url.utf8.count) bytes", file: file, line: line)
    }
}
