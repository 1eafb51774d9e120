import GatewayCore
import HTTPTransport

/// WeCom's customer-contact API (`externalcontact/*`) with the corp's shared access token
/// (`gettoken`, fetched like an Official Account's, one holder at a time).
public struct WeComContactAPI: Sendable {
    public struct Contact: Sendable, Equatable {
        public let externalUserId: String
        public let name: String
        /// Present when the corp is bound to the same WeChat Open Platform as the Official Account.
        public let unionId: String?
        /// The members who added the contact, with the contact way's state each came through.
        public let followUsers: [(userId: String, state: String?)]

        public static func == (a: Contact, b: Contact) -> Bool {
            a.externalUserId == b.externalUserId && a.name == b.name && a.unionId == b.unionId
                && a.followUsers.map { "\($0.userId)|\($0.state ?? "")" } == b.followUsers.map { "\($0.userId)|\($0.state ?? "")" }
        }
    }

    let client: WeChatAPIClient

    public init(transport: HTTPTransport = .shared, tokens: AccessTokenManager, baseURL: String) {
        client = WeChatAPIClient(transport: transport, tokens: tokens, baseURL: baseURL)
    }

    /// `GET externalcontact/get?external_userid=`.
    public func contact(account: String, externalUserId: String) async throws -> Contact {
        let json = try await client.call(
            account: account, method: "GET", path: "/cgi-bin/externalcontact/get", query: "&external_userid=" + ResolvedAdapter.percentEncode(externalUserId),
            body: nil)
        var follows = [(userId: String, state: String?)]()
        if case .array(let list)? = json.lookup("follow_user") {
            for f in list {
                guard let user = f.lookup("userid")?.scalarText else { continue }
                follows.append((user, f.lookup("state")?.scalarText.flatMap { $0.isEmpty ? nil : $0 }))
            }
        }
        return Contact(
            externalUserId: json.lookup("external_contact.external_userid")?.scalarText ?? externalUserId,
            name: json.lookup("external_contact.name")?.scalarText ?? "",
            unionId: json.lookup("external_contact.unionid")?.scalarText.flatMap { $0.isEmpty ? nil : $0 }, followUsers: follows)
    }

    /// `POST externalcontact/send_welcome_msg`: once per WelcomeCode, within 20 s of the event.
    public func sendWelcome(account: String, welcomeCode: String, content: WeChatContent) async throws {
        var body = Self.welcomeBody(content)
        body["welcome_code"] = .string(welcomeCode)
        _ = try await client.call(account: account, method: "POST", path: "/cgi-bin/externalcontact/send_welcome_msg", body: .object(body))
    }

    /// A welcome in WeCom's shape: text, or one attachment (image, link for a news article, miniprogram).
    static func welcomeBody(_ content: WeChatContent) -> [String: JSONValue] {
        if case .text(let t) = content { return WeComGroupSend.messageBody(text: t, attachments: []) }
        return WeComGroupSend.messageBody(text: nil, attachments: [content])
    }
}
