import Foundation
import GatewayCore
import GatewayCrypto

/// A code WeChat issued for a scene (`qrcode/create`).
public struct QRTicket: Sendable, Equatable {
    public let ticket: String
    /// What the code encodes (`http://weixin.qq.com/q/...`).
    public let url: String
    /// nil for permanent codes.
    public let expireSeconds: Int?
}

/// The account-level WeChat calls behind the surfaces API: QR codes and the custom menu.
public protocol WeChatSurfaces: Sendable {
    /// Issued by the built-in sandbox instead of WeChat.
    var isSandbox: Bool { get }
    /// A permanent code (`expireSeconds` nil, `QR_LIMIT_STR_SCENE`) or a temporary one (`QR_STR_SCENE`).
    func createQRCode(account: String, scene: String, expireSeconds: Int?) async throws -> QRTicket
    /// Publishes the menu (`menu/create`), replacing the one followers see.
    func publishMenu(account: String, menu: CustomMenu) async throws
    /// Uploads a temporary media file (`media/upload`); returns its media id.
    func uploadMedia(account: String, kind: WeChatMedia.Kind, bytes: [UInt8], format: WeChatMedia.Format) async throws -> String
    /// A mass send (`message/mass/sendall`, body from `MassSend.body`); returns WeChat's msg_id and msg_data_id.
    func massSend(account: String, body: JSONValue) async throws -> (msgId: String, msgDataId: String?)
}

/// The real calls, with the account's shared access token.
public struct WeChatSurfaceAPI: WeChatSurfaces {
    let client: WeChatAPIClient
    public var isSandbox: Bool { false }

    public init(client: WeChatAPIClient) { self.client = client }

    public func createQRCode(account: String, scene: String, expireSeconds: Int?) async throws -> QRTicket {
        var body: [String: JSONValue] = [
            "action_name": .string(expireSeconds == nil ? "QR_LIMIT_STR_SCENE" : "QR_STR_SCENE"),
            "action_info": .object(["scene": .object(["scene_str": .string(scene)])]),
        ]
        if let expireSeconds { body["expire_seconds"] = .int(Int64(expireSeconds)) }
        let json = try await client.call(account: account, method: "POST", path: "/cgi-bin/qrcode/create", body: .object(body))
        guard let ticket = json.lookup("ticket")?.scalarText, let url = json.lookup("url")?.scalarText else {
            throw WeChatAPIClient.APIError(code: "no_ticket", message: "qrcode/create answered without a ticket")
        }
        return QRTicket(ticket: ticket, url: url, expireSeconds: json.lookup("expire_seconds")?.scalarText.flatMap { Int($0) })
    }

    public func publishMenu(account: String, menu: CustomMenu) async throws {
        guard let body = JSONValue.parse(try JSONEncoder().encode(menu)) else { return }
        _ = try await client.call(account: account, method: "POST", path: "/cgi-bin/menu/create", body: body)
    }

    public func uploadMedia(account: String, kind: WeChatMedia.Kind, bytes: [UInt8], format: WeChatMedia.Format) async throws -> String {
        let boundary = "scrm-" + SecureRandom.alphanumeric(24)
        let json = try await client.call(
            account: account, method: "POST", path: "/cgi-bin/media/upload", query: "&type=\(kind.rawValue)",
            contentType: "multipart/form-data; boundary=\(boundary)", body: WeChatMedia.multipart(bytes, format: format, boundary: boundary), timeoutMs: 60_000)
        // A thumb's id comes back as thumb_media_id.
        guard let id = (json.lookup("media_id") ?? json.lookup("thumb_media_id"))?.scalarText else {
            throw WeChatAPIClient.APIError(code: "no_media_id", message: "media/upload answered without a media id")
        }
        return id
    }

    public func massSend(account: String, body: JSONValue) async throws -> (msgId: String, msgDataId: String?) {
        let json = try await client.call(account: account, method: "POST", path: "/cgi-bin/message/mass/sendall", body: body)
        guard let id = json.lookup("msg_id")?.scalarText else { throw WeChatAPIClient.APIError(code: "no_msg_id", message: "sendall answered without a msg_id") }
        return (id, json.lookup("msg_data_id")?.scalarText)
    }
}

/// Without a real WeChat API configured (the demo): codes with a random ticket and a URL nobody can
/// scan, and menus accepted as they are, so the whole flow can be tried with simulated callbacks.
public struct SandboxWeChatSurfaces: WeChatSurfaces {
    public var isSandbox: Bool { true }

    public init() {}

    public func createQRCode(account: String, scene: String, expireSeconds: Int?) async throws -> QRTicket {
        let id = SecureRandom.alphanumeric(22)
        return QRTicket(ticket: "sandbox-" + id, url: "http://weixin.qq.com/q/sandbox-\(id)", expireSeconds: expireSeconds)
    }

    public func publishMenu(account: String, menu: CustomMenu) async throws {}

    public func uploadMedia(account: String, kind: WeChatMedia.Kind, bytes: [UInt8], format: WeChatMedia.Format) async throws -> String {
        "sandbox-" + kind.rawValue + "-" + String(WeChatMedia.contentHash(bytes).prefix(40))
    }

    public func massSend(account: String, body: JSONValue) async throws -> (msgId: String, msgDataId: String?) {
        (String(UInt32.random(in: 1_000_000...UInt32.max)), nil)
    }
}
