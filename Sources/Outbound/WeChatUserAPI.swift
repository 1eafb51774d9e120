import GatewayCore
import HTTPTransport

/// The parts of WeChat's user API the gateway uses: profiles in batches of 100
/// (`user/info/batchget`), the follower list in pages of 10,000 (`user/get`), and WeChat's own tags
/// (`tags/create`, 50 openids per `tags/members/batchtagging`). Every call carries the account's
/// shared access token and is retried once with a fresh one when WeChat refuses it.
public struct WeChatUserAPI: Sendable {
    public static let batchGetLimit = 100
    public static let batchTagLimit = 50

    public typealias APIError = WeChatAPIClient.APIError

    public struct Follower: Sendable, Equatable {
        public let openid: String
        public let subscribed: Bool
        public let unionid: String?
        /// language, subscribe_time, subscribe_scene, qr_scene_str, remark (those present).
        public let profile: [String: String]
    }

    public struct Page: Sendable, Equatable {
        public let total: Int
        public let openids: [String]
        /// Empty when this was the last page.
        public let next: String
    }

    let client: WeChatAPIClient

    public init(transport: HTTPTransport = .shared, tokens: AccessTokenManager, baseURL: String) {
        client = WeChatAPIClient(transport: transport, tokens: tokens, baseURL: baseURL)
    }

    public func batchGet(account: String, openids: [String]) async throws -> [Follower] {
        precondition(openids.count <= Self.batchGetLimit, "user/info/batchget takes at most 100 openids")
        let body = JSONValue.object(["user_list": .array(openids.map { .object(["openid": .string($0), "lang": .string("zh_CN")]) })])
        let json = try await call(account: account, method: "POST", path: "/cgi-bin/user/info/batchget", query: "", body: body)
        guard case .array(let list)? = json.lookup("user_info_list") else { return [] }
        return list.compactMap { u in
            guard let openid = u.lookup("openid")?.scalarText else { return nil }
            var profile = [String: String]()
            for key in ["language", "subscribe_time", "subscribe_scene", "qr_scene_str", "remark"] {
                if let v = u.lookup(key)?.scalarText, !v.isEmpty { profile[key] = v }
            }
            return Follower(
                openid: openid, subscribed: u.lookup("subscribe")?.scalarText == "1", unionid: u.lookup("unionid")?.scalarText, profile: profile)
        }
    }

    public func followers(account: String, after next: String) async throws -> Page {
        let query = next.isEmpty ? "" : "&next_openid=" + ResolvedAdapter.percentEncode(next)
        let json = try await call(account: account, method: "GET", path: "/cgi-bin/user/get", query: query, body: nil)
        var openids = [String]()
        if case .array(let list)? = json.lookup("data.openid") { openids = list.compactMap(\.scalarText) }
        return Page(
            total: Int(json.lookup("total")?.scalarText ?? "") ?? 0, openids: openids,
            next: openids.isEmpty ? "" : json.lookup("next_openid")?.scalarText ?? "")
    }

    /// WeChat's id for a tag name, creating the tag on WeChat's side.
    public func createTag(account: String, name: String) async throws -> Int {
        let json = try await call(
            account: account, method: "POST", path: "/cgi-bin/tags/create", query: "", body: .object(["tag": .object(["name": .string(name)])]))
        guard let id = json.lookup("tag.id")?.scalarText.flatMap({ Int($0) }) else { throw APIError(code: "no_id", message: "tags/create returned no id") }
        return id
    }

    public func batchTag(account: String, tagId: Int, openids: [String]) async throws {
        precondition(openids.count <= Self.batchTagLimit, "tags/members/batchtagging takes at most 50 openids")
        _ = try await call(
            account: account, method: "POST", path: "/cgi-bin/tags/members/batchtagging", query: "",
            body: .object(["openid_list": .array(openids.map { .string($0) }), "tagid": .int(Int64(tagId))]))
    }

    private func call(account: String, method: String, path: String, query: String, body: JSONValue?) async throws -> JSONValue {
        try await client.call(account: account, method: method, path: path, query: query, body: body)
    }
}
