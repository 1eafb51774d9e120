/// A campaign's WeCom channel: customers reached through a salesperson's WeCom, by group-send task.
/// WeCom sends nothing by API alone: `externalcontact/add_msg_template` creates a task for one member
/// (`sender`) with up to 10,000 of their external contacts, and the message goes out when the member
/// confirms it in the WeCom client. So the planner groups the campaign's WeCom recipients by owner
/// (and variant, whose content may differ), one task per group and per 10,000; the results come from
/// `get_groupmsg_send_result` per recipient: 0 not sent yet, 1 sent, 2 not (or no longer) a contact
/// of the member, 3 already received another group message (WeCom's per-customer limit).
public enum WeComGroupSend {
    /// WeCom's limit of `external_userid` per `add_msg_template` call.
    public static let maxRecipients = 10_000
    /// WeCom's limits on the message: text bytes, attachments.
    public static let maxTextBytes = 4_000
    public static let maxAttachments = 9
    /// The channel's name in a campaign definition and its report.
    public static let channel = "wecom"

    /// The recipients of one owner, sorted, in tasks of at most `maxRecipients`: the same split
    /// whichever process makes it (the group is complete once planning is done).
    public static func chunks(_ externalUserIds: [String], size: Int = maxRecipients) -> [[String]] {
        let sorted = externalUserIds.sorted()
        return stride(from: 0, to: sorted.count, by: max(1, size)).map { Array(sorted[$0..<min($0 + size, sorted.count)]) }
    }

    /// A group: the variant and the owner (a variant name has no `|`).
    public static func group(variant: String, owner: String) -> String { "\(variant)|\(owner)" }

    public static func parseGroup(_ s: String) -> (variant: String, owner: String)? {
        guard let bar = s.firstIndex(of: "|") else { return nil }
        return (String(s[..<bar]), String(s[s.index(after: bar)...]))
    }

    /// The message part of a WeCom body (a welcome, a group send): `text`, and attachments as WeCom
    /// takes them (image, link for a news article, miniprogram). Text inside `attachments` is ignored.
    public static func messageBody(text: String?, attachments: [WeChatContent]) -> [String: JSONValue] {
        var body = [String: JSONValue]()
        if let text, !text.isEmpty { body["text"] = .object(["content": .string(text)]) }
        let items = attachments.compactMap(attachment)
        if !items.isEmpty { body["attachments"] = .array(items) }
        return body
    }

    static func attachment(_ content: WeChatContent) -> JSONValue? {
        switch content {
        case .text: return nil
        case .image(let m): return .object(["msgtype": .string("image"), "image": .object(["media_id": .string(m)])])
        case .news(let articles):
            guard let a = articles.first else { return nil }
            var link: [String: JSONValue] = ["title": .string(a.title), "url": .string(a.url)]
            if let d = a.description { link["desc"] = .string(d) }
            if let p = a.picUrl { link["picurl"] = .string(p) }
            return .object(["msgtype": .string("link"), "link": .object(link)])
        case .miniprogram(let card):
            return .object([
                "msgtype": .string("miniprogram"),
                "miniprogram": .object([
                    "title": .string(card.title), "pic_media_id": .string(card.thumbMediaId), "appid": .string(card.appId), "page": .string(card.pagePath),
                ]),
            ])
        }
    }

    /// The `add_msg_template` body, WeCom's exact shape.
    public static func taskBody(sender: String, externalUserIds: [String], text: String?, attachments: [WeChatContent]) -> JSONValue {
        var body = messageBody(text: text, attachments: attachments)
        body["chat_type"] = .string("single")
        body["sender"] = .string(sender)
        body["external_userid"] = .array(externalUserIds.map { .string($0) })
        return .object(body)
    }

    /// What is wrong with a group send's content, if anything: text of 1 to 4,000 bytes and/or 1 to 9
    /// attachments (image, news with one article, miniprogram).
    public static func problem(text: String?, attachments: [WeChatContent]) -> String? {
        if let t = text, t.utf8.count > maxTextBytes { return "text: at most \(maxTextBytes) bytes" }
        if (text ?? "").isEmpty && attachments.isEmpty { return "needs a text or attachments" }
        guard attachments.count <= maxAttachments else { return "attachments: at most \(maxAttachments)" }
        for (i, a) in attachments.enumerated() {
            if case .text = a { return "attachments[\(i)]: a text goes in `text`, not in attachments" }
            if let p = a.problems(at: "attachments[\(i)]", maxArticles: 1).first { return p }
        }
        return nil
    }
}

/// One group-send task of a campaign, as stored (`camp:{id}:wecom:tasks`) and reported.
public struct WeComGroupTask: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable {
        /// Waiting to be created on WeCom.
        case pending
        /// Created: the member has it in their WeCom client.
        case submitted
        /// WeCom refused it for good (`error`); its recipients count as failed.
        case failed
    }

    /// Per recipient, as `get_groupmsg_send_result` last said.
    public struct Results: Codable, Sendable, Equatable {
        public var unsent = 0
        public var sent = 0
        public var notFriend = 0
        public var alreadyReceived = 0

        public init() {}

        public var final: Int { sent + notFriend + alreadyReceived }
    }

    /// `<variant>|<owner>#<chunk>`.
    public let id: String
    public let account: String
    public let owner: String
    public let variant: String
    public let chunk: Int
    public let recipients: Int
    public var state: State
    public var msgId: String?
    /// Recipients WeCom refused at creation (`fail_list`: not a contact of the member, or invalid).
    public var failList: Int
    public var results: Results
    public var createdAt: Int64?
    /// Set when a crash left the call in doubt and the task was found on WeCom instead of created again.
    public var foundAfterCrash: Bool?
    public var error: String?
    /// The last results poll; polling stops when every recipient is final or after `pollWindowMs`.
    public var polledAt: Int64?

    public init(account: String, owner: String, variant: String, chunk: Int, recipients: Int) {
        self.id = "\(WeComGroupSend.group(variant: variant, owner: owner))#\(chunk)"
        self.account = account
        self.owner = owner
        self.variant = variant
        self.chunk = chunk
        self.recipients = recipients
        state = .pending
        failList = 0
        results = Results()
    }

    /// Results are polled this long after the task is created (members may confirm days later).
    public static let pollWindowMs: Int64 = 7 * 86_400_000

    /// When to ask for results next: 30 s after creation, then at twice the task's age, at most every
    /// 30 minutes; nil once every recipient is final or the window is over.
    public func nextPoll(nowMs: Int64, firstAfterMs: Int64 = 30_000) -> Int64? {
        guard state == .submitted, let created = createdAt else { return nil }
        if results.final + failList >= recipients, polledAt != nil { return nil }
        guard nowMs - created < Self.pollWindowMs else { return nil }
        let age = max(0, nowMs - created)
        return nowMs + min(max(firstAfterMs, age), 1_800_000)
    }
}
