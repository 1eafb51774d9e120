import Foundation
import Hummingbird
import NIOConcurrencyHelpers

/// The WeChat Official Account API as a loopback fake: `cgi-bin/token`, `cgi-bin/stable_token`,
/// template and customer-service sends, with WeChat's own answers: HTTP 200 with `errcode`/`errmsg`,
/// 41001/40001/42001 for a missing, unknown or expired access token, 45009 when the daily quota is
/// spent, 47001 for a malformed body. A token from `cgi-bin/token` replaces the previous one, which
/// stays valid for 5 more minutes; `stable_token` returns the current token unless `force_refresh`.
public final class WeChatFake: Sendable {
    public static let tokenLifetimeMs: Int64 = 7_200_000

    struct Token {
        let appId: String
        var expiresAtMs: Int64
    }

    struct State {
        var secrets: [String: String] = [:]
        var tokens: [String: Token] = [:]
        var current: [String: String] = [:]
        var fetches: [String: Int] = [:]
        var quota: [String: Int] = [:]
        var tokenCounter = 0
        /// appId -> followers in subscription order (openid, unionid).
        var followers: [String: [(openid: String, unionid: String?)]] = [:]
        /// appId -> tag name -> id, and tag id -> openids.
        var tags: [String: [String: Int]] = [:]
        var tagged: [Int: Set<String>] = [:]
        var nextTagId = 100
        /// openid/client_msg_id -> the msgid it got and when (WeChat's 10-minute dedup).
        var clientMsgIds: [String: (msgid: Int64, at: Int64)] = [:]
        /// ticket -> the code it stands for; appId -> published menu (JSON).
        var qrCodes: [String: FakeQRCode] = [:]
        var menus: [String: String] = [:]
        /// media id -> when it expires (temporary media: 3 days).
        var media: [String: Int64] = [:]
    }

    /// Followers per `user/get` page (WeChat: 10,000).
    public let pageSize: Int

    public let ledger: FakeLedger
    let state = NIOLockedValueBox(State())
    let clock: @Sendable () -> Int64

    public init(ledger: FakeLedger, pageSize: Int = 10_000, clock: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }) {
        self.ledger = ledger
        self.pageSize = pageSize
        self.clock = clock
    }

    /// Followers of an account, as `user/get` and `user/info/batchget` will report them.
    public func addFollowers(appId: String, _ list: [(openid: String, unionid: String?)]) {
        state.withLockedValue { $0.followers[appId, default: []].append(contentsOf: list) }
    }

    /// The openids WeChat holds under tag `name` of an account.
    public func taggedOpenids(appId: String, tag name: String) -> Set<String> {
        state.withLockedValue { s in s.tags[appId]?[name].flatMap { s.tagged[$0] } ?? [] }
    }

    public func addAccount(appId: String, secret: String) { state.withLockedValue { $0.secrets[appId] = secret } }

    /// Token fetches (`token` and `stable_token`) made by an account.
    public func tokenFetches(_ appId: String) -> Int { state.withLockedValue { $0.fetches[appId] ?? 0 } }

    /// Calls left today for an API ("template", "custom"); nil = unlimited.
    public func setQuota(_ api: String, _ remaining: Int?) { state.withLockedValue { $0.quota[api] = remaining } }

    /// Every issued token expires now (the next call with one gets 42001).
    public func expireTokens() {
        let now = clock()
        state.withLockedValue { s in for key in s.tokens.keys { s.tokens[key]!.expiresAtMs = now } }
    }

    public func add(to router: Router<BasicRequestContext>) {
        router.get("/cgi-bin/token") { request, _ -> Response in
            let q = request.uri.queryParameters
            guard q.get("grant_type") == "client_credential" else { return Self.error(40002, "invalid grant_type") }
            return self.issue(appId: q.get("appid") ?? "", secret: q.get("secret") ?? "", force: true)
        }
        router.post("/cgi-bin/stable_token") { request, _ -> Response in
            guard let body = jsonObject(try await request.body.collect(upTo: 1 << 16)), body["grant_type"] as? String == "client_credential"
            else { return Self.error(40002, "invalid grant_type") }
            return self.issue(appId: body["appid"] as? String ?? "", secret: body["secret"] as? String ?? "", force: body["force_refresh"] as? Bool ?? false)
        }
        router.post("/cgi-bin/message/template/send") { request, _ -> Response in
            try await self.send(request, api: "template") { body in
                guard let to = body["touser"] as? String, body["template_id"] is String, body["data"] is [String: Any] else { return nil }
                return (to, body["client_msg_id"] as? String)
            }
        }
        userRoutes(router)
        surfaceRoutes(router)
        router.post("/cgi-bin/message/custom/send") { request, _ -> Response in
            try await self.send(request, api: "custom", validate: self.mediaProblem) { body in
                guard let to = body["touser"] as? String, let type = body["msgtype"] as? String, body[type] is [String: Any] else { return nil }
                return (to, nil)
            }
        }
    }

    private func userRoutes(_ router: Router<BasicRequestContext>) {
        router.get("/cgi-bin/user/get") { request, _ -> Response in
            if let forced = self.ledger.begin("wechat.user.get") { return forced.response }
            let appId: String
            switch self.authorize(request) {
            case .failure(let e): return e.response
            case .success(let a): appId = a
            }
            let next = request.uri.queryParameters.get("next_openid").map { String($0) } ?? ""
            let (total, page) = self.state.withLockedValue { s -> (Int, [String]) in
                let all = (s.followers[appId] ?? []).map(\.openid)
                let start = next.isEmpty ? 0 : ((all.firstIndex(of: next) ?? all.count - 1) + 1)
                return (all.count, Array(all[min(start, all.count)..<min(start + self.pageSize, all.count)]))
            }
            var body: [String: Any] = ["total": total, "count": page.count, "next_openid": page.last ?? ""]
            if !page.isEmpty { body["data"] = ["openid": page] }
            return jsonResponse(body)
        }
        router.post("/cgi-bin/user/info/batchget") { request, _ -> Response in
            let buffer = try await request.body.collect(upTo: 1 << 20)
            if let forced = self.ledger.begin("wechat.user.batchget") { return forced.response }
            let appId: String
            switch self.authorize(request) {
            case .failure(let e): return e.response
            case .success(let a): appId = a
            }
            guard let list = jsonObject(buffer)?["user_list"] as? [[String: Any]], !list.isEmpty else { return Self.error(47001, "data format error") }
            guard list.count <= 100 else { return Self.error(45032, "user list size exceeds limit") }
            let known = self.state.withLockedValue { s in Dictionary((s.followers[appId] ?? []).map { ($0.openid, $0.unionid) }, uniquingKeysWith: { a, _ in a }) }
            let infos: [[String: Any]] = list.compactMap { $0["openid"] as? String }.map { openid in
                guard let unionid = known[openid] else { return ["subscribe": 0, "openid": openid] }
                var info: [String: Any] = [
                    "subscribe": 1, "openid": openid, "language": "zh_CN", "subscribe_time": 1_700_000_000, "remark": "",
                    "groupid": 0, "tagid_list": [Int](), "subscribe_scene": "ADD_SCENE_QR_CODE", "qr_scene": 0, "qr_scene_str": "expo2026",
                ]
                if let unionid { info["unionid"] = unionid }
                return info
            }
            return jsonResponse(["user_info_list": infos])
        }
        router.post("/cgi-bin/tags/create") { request, _ -> Response in
            let buffer = try await request.body.collect(upTo: 1 << 16)
            let appId: String
            switch self.authorize(request) {
            case .failure(let e): return e.response
            case .success(let a): appId = a
            }
            guard let name = (jsonObject(buffer)?["tag"] as? [String: Any])?["name"] as? String, !name.isEmpty, name.count <= 30 else {
                return Self.error(45158, "tag name too long")
            }
            let id: Int? = self.state.withLockedValue { s in
                if s.tags[appId]?[name] != nil { return nil }
                s.nextTagId += 1
                s.tags[appId, default: [:]][name] = s.nextTagId
                return s.nextTagId
            }
            guard let id else { return Self.error(45157, "invalid tag name") }
            return jsonResponse(["tag": ["id": id, "name": name]])
        }
        router.post("/cgi-bin/tags/members/batchtagging") { request, _ -> Response in
            let buffer = try await request.body.collect(upTo: 1 << 16)
            if let forced = self.ledger.begin("wechat.tags.batchtagging") { return forced.response }
            if case .failure(let e) = self.authorize(request) { return e.response }
            guard let body = jsonObject(buffer), let openids = body["openid_list"] as? [String], let tagId = body["tagid"] as? Int else {
                return Self.error(47001, "data format error")
            }
            guard openids.count <= 50 else { return Self.error(40032, "invalid openid list size") }
            self.state.withLockedValue { $0.tagged[tagId, default: []].formUnion(openids) }
            return Self.error(0, "ok")
        }
    }

    /// The appId an access token belongs to, or WeChat's error for a missing, unknown or expired token.
    func authorize(_ request: Request) -> Result<String, FakeAnswer> {
        guard let token = request.uri.queryParameters.get("access_token"), !token.isEmpty else {
            return .failure(FakeAnswer(json: #"{"errcode":41001,"errmsg":"access_token missing"}"#))
        }
        let now = clock()
        return state.withLockedValue { s in
            guard let t = s.tokens[String(token)] else {
                return .failure(FakeAnswer(json: #"{"errcode":40001,"errmsg":"invalid credential, access_token is invalid or not latest"}"#))
            }
            guard t.expiresAtMs > now else { return .failure(FakeAnswer(json: #"{"errcode":42001,"errmsg":"access_token expired"}"#)) }
            return .success(t.appId)
        }
    }

    private func issue(appId: String, secret: String, force: Bool) -> Response {
        if let forced = ledger.begin("wechat.token") { return forced.response }
        let now = clock()
            let result: Result<(String, Int64), FakeAnswer> = state.withLockedValue { s in
                guard let expected = s.secrets[appId] else { return .failure(FakeAnswer(json: #"{"errcode":40013,"errmsg":"invalid appid"}"#)) }
                guard expected == secret else { return .failure(FakeAnswer(json: #"{"errcode":40125,"errmsg":"invalid appsecret"}"#)) }
                s.fetches[appId, default: 0] += 1
                if !force, let token = s.current[appId], let t = s.tokens[token], t.expiresAtMs > now { return .success((token, t.expiresAtMs)) }
                if let old = s.current[appId], s.tokens[old] != nil { s.tokens[old]!.expiresAtMs = min(s.tokens[old]!.expiresAtMs, now + 300_000) }
                s.tokenCounter += 1
                let token = "fake-token-\(appId)-\(s.tokenCounter)"
                s.tokens[token] = Token(appId: appId, expiresAtMs: now + Self.tokenLifetimeMs)
                s.current[appId] = token
                return .success((token, now + Self.tokenLifetimeMs))
            }
            switch result {
            case .success(let (token, expires)): return jsonResponse(["access_token": token, "expires_in": Int((expires - now) / 1000)])
            case .failure(let answer): return answer.response
            }
    }

    private func send(
        _ request: Request, api: String, validate: (([String: Any]) -> (Int, String)?)? = nil, parse: ([String: Any]) -> (String, String?)?
    ) async throws -> Response {
        let buffer = try await request.body.collect(upTo: 1 << 20)
        if let forced = ledger.begin("wechat.\(api)") { return forced.response }
        guard let token = request.uri.queryParameters.get("access_token"), !token.isEmpty else { return Self.error(41001, "access_token missing") }
        let now = clock()
        let check: (Int, String)? = state.withLockedValue { s in
            guard let t = s.tokens[token] else { return (40001, "invalid credential, access_token is invalid or not latest") }
            guard t.expiresAtMs > now else { return (42001, "access_token expired") }
            if let left = s.quota[api] {
                guard left > 0 else { return (45009, "reach max api daily quota limit") }
                s.quota[api] = left - 1
            }
            return nil
        }
        if let (code, message) = check { return Self.error(code, message) }
        guard let body = jsonObject(buffer), let (to, messageId) = parse(body) else { return Self.error(47001, "data format error") }
        if let validate, let (code, message) = validate(body) { return Self.error(code, message) }
        if let refused = ledger.refusal("wechat.\(api)", to: to) { return refused.response }
        // WeChat sends one message per openid + client_msg_id within 10 minutes; a repeat is refused.
        let dedupKey = messageId.map { "\(to)/\($0)" }
        if let dedupKey {
            // Claimed atomically, so two concurrent repeats cannot both go through.
            let earlier: Int64? = state.withLockedValue { s in
                if let e = s.clientMsgIds[dedupKey], now - e.at < 600_000 { return e.msgid }
                s.clientMsgIds[dedupKey] = (0, now)
                return nil
            }
            if let earlier {
                ledger.count("wechat.\(api).duplicate")
                return jsonResponse(["errcode": 45065, "errmsg": "clientmsgid exist", "msgid": earlier])
            }
        }
        let id = ledger.deliver("wechat.\(api)", to: to, messageId: messageId, body: flatten(body)) { String(2_553_847_254_416_343_040 + Int64($0)) }
        if let dedupKey { state.withLockedValue { $0.clientMsgIds[dedupKey] = (Int64(id)!, now) } }
        await ledger.holdWhileHanging()
        return api == "template" ? jsonResponse(["errcode": 0, "errmsg": "ok", "msgid": Int64(id)!]) : jsonResponse(["errcode": 0, "errmsg": "ok"])
    }

    static func error(_ code: Int, _ message: String) -> Response { jsonResponse(["errcode": code, "errmsg": message]) }
}
