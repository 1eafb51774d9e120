import Foundation
import Hummingbird

/// A code the fake issued.
public struct FakeQRCode: Sendable {
    public let appId: String
    public let scene: String
    public let url: String
    /// nil for permanent codes.
    public let expiresAtMs: Int64?
}

/// `qrcode/create` and `menu/create` as WeChat answers them.
/// - QR codes: `QR_STR_SCENE` (temporary: `expire_seconds` defaults to 60 and is capped at 2,592,000)
///   and `QR_LIMIT_STR_SCENE` (permanent: the same scene gets the same ticket again); `scene_str` is
///   1 to 64 characters, else 40097 invalid args.
/// - Media: `media/upload` takes multipart/form-data with a `media` part: image (JPEG, PNG, GIF, at
///   most 10 MB) or thumb (JPEG, at most 64 KB), else 40004/40005/40006/41005; ids live 3 days, and a
///   customer-service message naming an unknown or expired one gets 40007 invalid media_id.
/// - Mass sends: `message/mass/sendall` to a tag the account has (else 45159 invalid tag id), within the
///   quota `setQuota("mass", n)` sets (else 45028 has no masssend quota); a repeated `clientmsgid`
///   answers 45065 with the first msg_id. Deliveries are recorded as `wechat.mass` to `tag:<id>`.
/// - Menus: 40016 for 0 or more than 3 buttons, 40018 for a name over 16 bytes, 40023 for more than
///   5 sub-buttons, 40025 for a sub-button name over 60 bytes, 40017 for an unknown type, 40019 for a
///   key over 128 bytes.
extension WeChatFake {
    public func qrCode(ticket: String) -> FakeQRCode? { state.withLockedValue { $0.qrCodes[ticket] } }

    /// A WeChat tag of an account (as `tags/create` makes one); its id.
    public func addTag(appId: String, name: String) -> Int {
        state.withLockedValue { s in
            s.nextTagId += 1
            s.tags[appId, default: [:]][name] = s.nextTagId
            return s.nextTagId
        }
    }

    /// The published menu's JSON body.
    public func menu(appId: String) -> String? { state.withLockedValue { $0.menus[appId] } }

    func surfaceRoutes(_ router: Router<BasicRequestContext>) {
        router.post("/cgi-bin/qrcode/create") { request, _ -> Response in
            let buffer = try await request.body.collect(upTo: 1 << 16)
            if let forced = self.ledger.begin("wechat.qrcode.create") { return forced.response }
            let appId: String
            switch self.authorize(request) {
            case .failure(let e): return e.response
            case .success(let a): appId = a
            }
            guard let body = jsonObject(buffer), let action = body["action_name"] as? String,
                let scene = ((body["action_info"] as? [String: Any])?["scene"] as? [String: Any])?["scene_str"] as? String
            else { return Self.error(47001, "data format error") }
            guard ["QR_STR_SCENE", "QR_LIMIT_STR_SCENE"].contains(action), (1...64).contains(scene.count) else { return Self.error(40097, "invalid args") }
            let permanent = action == "QR_LIMIT_STR_SCENE"
            let seconds = permanent ? nil : min(max((body["expire_seconds"] as? Int) ?? 60, 60), 2_592_000)
            let now = self.clock()
            let (ticket, url): (String, String) = self.state.withLockedValue { s in
                if permanent, let (t, c) = s.qrCodes.first(where: { $0.value.appId == appId && $0.value.scene == scene && $0.value.expiresAtMs == nil }) {
                    return (t, c.url)
                }
                let id = "fake\(s.qrCodes.count + 1)" + String(repeating: "q", count: 8)
                let ticket = Data("\(appId)/\(scene)/\(id)".utf8).base64EncodedString()
                let url = "http://weixin.qq.com/q/\(id)"
                s.qrCodes[ticket] = FakeQRCode(appId: appId, scene: scene, url: url, expiresAtMs: seconds.map { now + Int64($0) * 1000 })
                return (ticket, url)
            }
            self.ledger.count("wechat.qrcode.issued")
            var answer: [String: Any] = ["ticket": ticket, "url": url]
            if let seconds { answer["expire_seconds"] = seconds }
            return jsonResponse(answer)
        }
        router.post("/cgi-bin/media/upload") { request, _ -> Response in
            let buffer = try await request.body.collect(upTo: 11 << 20)
            if let forced = self.ledger.begin("wechat.media.upload") { return forced.response }
            if case .failure(let e) = self.authorize(request) { return e.response }
            let type = request.uri.queryParameters.get("type").map { String($0) } ?? ""
            guard ["image", "thumb", "voice", "video"].contains(type) else { return Self.error(40004, "invalid media type") }
            guard let part = Self.mediaPart(request.headers[.contentType] ?? "", Array(buffer: buffer)) else { return Self.error(41005, "media data missing") }
            let jpeg = part.starts(with: [0xFF, 0xD8, 0xFF])
            let png = part.starts(with: [0x89, 0x50, 0x4E, 0x47])
            let gif = part.starts(with: Array("GIF8".utf8))
            if type == "thumb" {
                guard jpeg else { return Self.error(40005, "invalid file type") }
                guard part.count <= 64 * 1024 else { return Self.error(40006, "invalid meida size") }
            } else if type == "image" {
                guard jpeg || png || gif else { return Self.error(40005, "invalid file type") }
                guard part.count <= 10 << 20 else { return Self.error(40006, "invalid meida size") }
            }
            let now = self.clock()
            let id: String = self.state.withLockedValue { s in
                let id = "fakeMedia\(s.media.count + 1)_" + String(repeating: "x", count: 40)
                s.media[id] = now + 3 * 86_400_000
                return id
            }
            self.ledger.count("wechat.media.uploaded")
            var answer: [String: Any] = ["type": type, "created_at": now / 1000]
            answer[type == "thumb" ? "thumb_media_id" : "media_id"] = id
            return jsonResponse(answer)
        }
        router.post("/cgi-bin/message/mass/sendall") { request, _ -> Response in
            let buffer = try await request.body.collect(upTo: 1 << 20)
            if let forced = self.ledger.begin("wechat.mass.sendall") { return forced.response }
            let appId: String
            switch self.authorize(request) {
            case .failure(let e): return e.response
            case .success(let a): appId = a
            }
            guard let body = jsonObject(buffer), let filter = body["filter"] as? [String: Any], let tagId = filter["tag_id"] as? Int,
                let type = body["msgtype"] as? String, ["text", "image", "mpnews", "voice", "mpvideo", "wxcard"].contains(type),
                body[type == "image" ? "images" : type] is [String: Any]
            else { return Self.error(47001, "data format error") }
            let outcome: (Int, String, Int64?) = self.state.withLockedValue { s in
                guard s.tags[appId]?.values.contains(tagId) == true else { return (45159, "invalid tag id", nil) }
                let client = body["clientmsgid"] as? String
                if let client, let earlier = s.clientMsgIds["mass/\(appId)/\(client)"] { return (45065, "clientmsgid exist", earlier.msgid) }
                if let left = s.quota["mass"] {
                    guard left > 0 else { return (45028, "has no masssend quota", nil) }
                    s.quota["mass"] = left - 1
                }
                s.tokenCounter += 1
                let id = Int64(1_000_000 + s.tokenCounter)
                if let client { s.clientMsgIds["mass/\(appId)/\(client)"] = (id, self.clock()) }
                return (0, "send job submission success", id)
            }
            guard outcome.0 == 0, let id = outcome.2 else {
                var answer: [String: Any] = ["errcode": outcome.0, "errmsg": outcome.1]
                if let id = outcome.2 { answer["msg_id"] = id }
                return jsonResponse(answer)
            }
            _ = self.ledger.deliver("wechat.mass", to: "tag:\(tagId)", messageId: body["clientmsgid"] as? String, body: flatten(body)) { _ in String(id) }
            return jsonResponse(["errcode": 0, "errmsg": "send job submission success", "msg_id": id, "msg_data_id": 2_247_483_000 + id])
        }
        router.post("/cgi-bin/menu/create") { request, _ -> Response in
            let buffer = try await request.body.collect(upTo: 1 << 16)
            if let forced = self.ledger.begin("wechat.menu.create") { return forced.response }
            let appId: String
            switch self.authorize(request) {
            case .failure(let e): return e.response
            case .success(let a): appId = a
            }
            guard let body = jsonObject(buffer), let buttons = body["button"] as? [[String: Any]] else { return Self.error(47001, "data format error") }
            if let (code, message) = Self.menuError(buttons) { return Self.error(code, message) }
            self.state.withLockedValue { $0.menus[appId] = String(buffer: buffer) }
            self.ledger.count("wechat.menu.published")
            return Self.error(0, "ok")
        }
    }

    /// 40007 when a customer-service message names a media id the fake never issued, or one expired.
    func mediaProblem(_ body: [String: Any]) -> (Int, String)? {
        let ids = [(body["image"] as? [String: Any])?["media_id"], (body["miniprogrampage"] as? [String: Any])?["thumb_media_id"]].compactMap { $0 as? String }
        let now = clock()
        for id in ids where state.withLockedValue({ ($0.media[id] ?? 0) <= now }) { return (40007, "invalid media_id") }
        return nil
    }

    /// The bytes of the `media` part of a multipart/form-data body.
    static func mediaPart(_ contentType: String, _ body: [UInt8]) -> [UInt8]? {
        guard contentType.hasPrefix("multipart/form-data"), let b = contentType.range(of: "boundary=") else { return nil }
        let boundary = Array("--\(contentType[b.upperBound...])".utf8)
        guard let header = find(Array("name=\"media\"".utf8), in: body, from: 0),
            let start = find([13, 10, 13, 10], in: body, from: header).map({ $0 + 4 }),
            let end = find([13, 10] + boundary, in: body, from: start)
        else { return nil }
        return Array(body[start..<end])
    }

    static func find(_ needle: [UInt8], in hay: [UInt8], from: Int) -> Int? {
        guard needle.count <= hay.count else { return nil }
        var i = from
        while i + needle.count <= hay.count {
            if hay[i] == needle[0], Array(hay[i..<i + needle.count]) == needle { return i }
            i += 1
        }
        return nil
    }

    static let menuTypes: Set<String> = [
        "click", "view", "scancode_push", "scancode_waitmsg", "pic_sysphoto", "pic_photo_or_album", "pic_weixin", "location_select", "media_id",
        "article_id", "article_view_limited", "miniprogram",
    ]

    static func menuError(_ buttons: [[String: Any]]) -> (Int, String)? {
        guard (1...3).contains(buttons.count) else { return (40016, "invalid button size") }
        func action(_ b: [String: Any]) -> (Int, String)? {
            guard let type = b["type"] as? String, menuTypes.contains(type) else { return (40017, "invalid button type") }
            if let key = b["key"] as? String, key.utf8.count > 128 { return (40019, "invalid button key size") }
            return nil
        }
        for b in buttons {
            guard let name = b["name"] as? String, (1...16).contains(name.utf8.count) else { return (40018, "invalid button name size") }
            if let subs = b["sub_button"] as? [[String: Any]], !subs.isEmpty {
                guard subs.count <= 5 else { return (40023, "invalid sub button size") }
                for s in subs {
                    guard let n = s["name"] as? String, (1...60).contains(n.utf8.count) else { return (40025, "invalid sub button name size") }
                    if let e = action(s) { return e }
                }
            } else if let e = action(b) {
                return e
            }
        }
        return nil
    }
}
