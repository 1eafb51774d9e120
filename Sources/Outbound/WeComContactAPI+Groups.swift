import GatewayCore

/// WeCom's group send to external contacts (`externalcontact/*`, the customer-contact secret's token).
extension WeComContactAPI {
    /// `add_msg_template`: a task for `sender` (a member) to send to up to 10,000 of their contacts.
    /// Returns WeCom's `msgid` and `fail_list` (contacts it will not send to).
    public func createGroupTask(account: String, sender: String, externalUserIds: [String], text: String?, attachments: [WeChatContent]) async throws
        -> (msgId: String, failList: [String])
    {
        let json = try await client.call(
            account: account, method: "POST", path: "/cgi-bin/externalcontact/add_msg_template",
            body: WeComGroupSend.taskBody(sender: sender, externalUserIds: externalUserIds, text: text, attachments: attachments))
        guard let msgId = json.lookup("msgid")?.scalarText, !msgId.isEmpty else {
            throw WeChatAPIClient.APIError(code: "no msgid", message: "add_msg_template answered without a msgid")
        }
        var failed = [String]()
        if case .array(let list)? = json.lookup("fail_list") { failed = list.compactMap(\.scalarText) }
        return (msgId, failed)
    }

    /// `get_groupmsg_send_result` for one member, every page: each contact's status (0 not sent, 1
    /// sent, 2 not a contact, 3 already received another group message).
    public func groupSendResults(account: String, msgId: String, sender: String) async throws -> [(externalUserId: String, status: Int)] {
        try await pages(
            account: account, path: "/cgi-bin/externalcontact/get_groupmsg_send_result",
            body: ["msgid": .string(msgId), "userid": .string(sender), "limit": .int(1000)], list: "send_list"
        ).compactMap { item in
            guard let ext = item.lookup("external_userid")?.scalarText, let status = item.lookup("status")?.scalarText.flatMap({ Int($0) }) else { return nil }
            return (ext, status)
        }
    }

    /// A group message the corp made (`get_groupmsg_list_v2`, created by the enterprise).
    public struct GroupMessage: Sendable, Equatable {
        public let msgId: String
        public let text: String?
        public let attachments: Int
    }

    /// The corp's group messages created between two times (seconds; WeCom allows a month at most),
    /// every page. API-made messages carry no creator: `groupTaskSenders` tells whose they are.
    public func groupMessages(account: String, fromSeconds: Int64, toSeconds: Int64) async throws -> [GroupMessage] {
        try await pages(
            account: account, path: "/cgi-bin/externalcontact/get_groupmsg_list_v2",
            body: ["chat_type": .string("single"), "start_time": .int(fromSeconds), "end_time": .int(toSeconds), "filter_type": .int(0), "limit": .int(100)],
            list: "group_msg_list"
        ).compactMap { m in
            guard let id = m.lookup("msgid")?.scalarText else { return nil }
            var attachments = 0
            if case .array(let a)? = m.lookup("attachments") { attachments = a.count }
            return GroupMessage(msgId: id, text: m.lookup("text.content")?.scalarText, attachments: attachments)
        }
    }

    /// The members a group message went to (`get_groupmsg_task`, every page).
    public func groupTaskSenders(account: String, msgId: String) async throws -> [String] {
        try await pages(
            account: account, path: "/cgi-bin/externalcontact/get_groupmsg_task", body: ["msgid": .string(msgId), "limit": .int(1000)], list: "task_list"
        ).compactMap { $0.lookup("userid")?.scalarText }
    }

    /// Every item of a cursor-paged `POST` (`cursor` in, `next_cursor` out, empty at the end).
    func pages(account: String, path: String, body: [String: JSONValue], list: String) async throws -> [JSONValue] {
        var items = [JSONValue]()
        var cursor = ""
        for _ in 0..<1_000 {
            var request = body
            if !cursor.isEmpty { request["cursor"] = .string(cursor) }
            let json = try await client.call(account: account, method: "POST", path: path, body: .object(request))
            if case .array(let page)? = json.lookup(list) { items += page }
            cursor = json.lookup("next_cursor")?.scalarText ?? ""
            if cursor.isEmpty { break }
        }
        return items
    }
}
