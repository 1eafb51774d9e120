import Foundation
import Hummingbird

/// WeCom's group send to external contacts, as the fake plays it:
/// - `add_msg_template` (`chat_type` single): at most 10,000 `external_userid` (40058 beyond), text
///   of at most 4,000 bytes and/or up to 9 attachments (44004 when both are empty). Contacts the
///   `sender` does not follow go to `fail_list`; the others wait for the member to confirm in the
///   WeCom client (`confirmGroupMessages`, the test's stand-in for the member).
/// - `get_groupmsg_send_result` (`msgid`, `userid`, `limit` up to 1,000, default 500, `cursor`): per
///   contact 0 not sent, 1 sent, 2 no longer a contact, 3 already received a group message that day
///   (the fake's model of WeCom's per-customer limit: one enterprise group message per day).
/// - `get_groupmsg_list_v2`: the corp's messages between `start_time` and `end_time` (at most a
///   month apart, 40058 beyond; `limit` up to 100), without `creator` for API-made ones, as WeCom does.
/// - `get_groupmsg_task` (`msgid`): the member's task, status 0 not sent or 2 sent.
/// Unknown `msgid`: 41063 (the fake's choice).
extension WeComFake {
    public struct GroupMessage: Sendable {
        public let msgId: String
        public let sender: String
        /// The contacts it will go to (the request's, less `fail_list`), in request order.
        public let externalUserIds: [String]
        public let failList: [String]
        /// The request body, as JSON text.
        public let body: String
        public let createdAtMs: Int64
        /// Contact -> status once the member confirmed (1 sent, 2 not a contact, 3 already received).
        public var statuses: [String: Int] = [:]
        public var sentAtMs: Int64?
    }

    public var groupMessages: [GroupMessage] { state.withLockedValue { $0.groupMessages } }

    /// The contact got a group message today (from elsewhere): another one today gets status 3.
    public func receivedGroupMessageToday(_ externalUserId: String) {
        let day = clock() / 86_400_000
        state.withLockedValue { _ = $0.received[externalUserId, default: []].insert(day) }
    }

    /// The member confirms every group message waiting for them, as they would in the WeCom client.
    public func confirmGroupMessages(sender: String) {
        let now = clock()
        let day = now / 86_400_000
        state.withLockedValue { s in
            for i in s.groupMessages.indices where s.groupMessages[i].sender == sender && s.groupMessages[i].sentAtMs == nil {
                for ext in s.groupMessages[i].externalUserIds {
                    let follows = s.contacts[ext]?.followUsers.contains { $0.userId == sender } ?? false
                    if !follows {
                        s.groupMessages[i].statuses[ext] = 2
                    } else if s.received[ext, default: []].contains(day) {
                        s.groupMessages[i].statuses[ext] = 3
                    } else {
                        s.groupMessages[i].statuses[ext] = 1
                        s.received[ext, default: []].insert(day)
                    }
                }
                s.groupMessages[i].sentAtMs = now
            }
        }
    }

    func addGroupSendRoutes(to router: Router<BasicRequestContext>) {
        router.post("/cgi-bin/externalcontact/add_msg_template") { request, _ -> Response in
            let buffer = try await request.body.collect(upTo: 1 << 22)
            if let forced = self.ledger.begin("wecom.add_msg_template") { return forced.response }
            if let refused = self.authorize(request) { return refused }
            guard let body = jsonObject(buffer), (body["chat_type"] as? String ?? "single") == "single" else {
                return WeChatFake.error(47001, "data format error")
            }
            let ids = body["external_userid"] as? [String] ?? []
            let sender = body["sender"] as? String ?? ""
            let text = (body["text"] as? [String: Any])?["content"] as? String ?? ""
            let attachments = body["attachments"] as? [Any] ?? []
            guard !ids.isEmpty, ids.count <= 10_000, !sender.isEmpty, text.utf8.count <= 4_000, attachments.count <= 9 else {
                return WeChatFake.error(40058, "invalid parameter")
            }
            guard !text.isEmpty || !attachments.isEmpty else { return WeChatFake.error(44004, "empty content") }
            let now = self.clock()
            let (msgId, failList): (String, [String]) = self.state.withLockedValue { s in
                s.counter += 1
                let id = "msgGCAAA\(s.counter)fake"
                var accepted = [String](), failed = [String]()
                for ext in ids {
                    if s.contacts[ext]?.followUsers.contains(where: { $0.userId == sender }) == true { accepted.append(ext) } else { failed.append(ext) }
                }
                s.groupMessages.append(
                    GroupMessage(msgId: id, sender: sender, externalUserIds: accepted, failList: failed, body: String(buffer: buffer), createdAtMs: now))
                return (id, failed)
            }
            await self.ledger.holdWhileHanging()
            return jsonResponse(["errcode": 0, "errmsg": "ok", "msgid": msgId, "fail_list": failList])
        }
        router.post("/cgi-bin/externalcontact/get_groupmsg_send_result") { request, _ -> Response in
            let buffer = try await request.body.collect(upTo: 1 << 16)
            if let forced = self.ledger.begin("wecom.get_groupmsg_send_result") { return forced.response }
            if let refused = self.authorize(request) { return refused }
            guard let body = jsonObject(buffer), let msgId = body["msgid"] as? String, let user = body["userid"] as? String else {
                return WeChatFake.error(47001, "data format error")
            }
            guard let m = self.state.withLockedValue({ $0.groupMessages.first { $0.msgId == msgId } }) else { return WeChatFake.error(41063, "invalid msgid") }
            let rows: [[String: Any]] =
                m.sender != user
                ? []
                : m.externalUserIds.map { ext in
                    var row: [String: Any] = ["external_userid": ext, "userid": user, "status": m.statuses[ext] ?? 0]
                    if m.statuses[ext] == 1, let at = m.sentAtMs { row["send_time"] = Int(at / 1000) }
                    return row
                }
            let (page, next) = Self.page(rows, body: body, maxLimit: 1_000, defaultLimit: 500)
            return jsonResponse(["errcode": 0, "errmsg": "ok", "send_list": page, "next_cursor": next])
        }
        router.post("/cgi-bin/externalcontact/get_groupmsg_list_v2") { request, _ -> Response in
            let buffer = try await request.body.collect(upTo: 1 << 16)
            if let forced = self.ledger.begin("wecom.get_groupmsg_list_v2") { return forced.response }
            if let refused = self.authorize(request) { return refused }
            guard let body = jsonObject(buffer), let start = (body["start_time"] as? NSNumber)?.int64Value, let end = (body["end_time"] as? NSNumber)?.int64Value
            else { return WeChatFake.error(47001, "data format error") }
            guard end >= start, end - start <= 31 * 86_400 else { return WeChatFake.error(40058, "invalid parameter") }
            let rows: [[String: Any]] = self.state.withLockedValue { s in
                s.groupMessages.filter { $0.createdAtMs / 1000 >= start && $0.createdAtMs / 1000 <= end }.map { m in
                    // API-made messages carry no creator (WeCom's documented behaviour).
                    var row: [String: Any] = ["msgid": m.msgId, "create_time": String(m.createdAtMs / 1000), "create_type": 0]
                    if let request = jsonObject(ByteBuffer(string: m.body)) {
                        if let text = request["text"] { row["text"] = text }
                        if let attachments = request["attachments"] { row["attachments"] = attachments }
                    }
                    return row
                }
            }
            let (page, next) = Self.page(rows, body: body, maxLimit: 100, defaultLimit: 50)
            return jsonResponse(["errcode": 0, "errmsg": "ok", "group_msg_list": page, "next_cursor": next])
        }
        router.post("/cgi-bin/externalcontact/get_groupmsg_task") { request, _ -> Response in
            let buffer = try await request.body.collect(upTo: 1 << 16)
            if let forced = self.ledger.begin("wecom.get_groupmsg_task") { return forced.response }
            if let refused = self.authorize(request) { return refused }
            guard let body = jsonObject(buffer), let msgId = body["msgid"] as? String else { return WeChatFake.error(47001, "data format error") }
            guard let m = self.state.withLockedValue({ $0.groupMessages.first { $0.msgId == msgId } }) else { return WeChatFake.error(41063, "invalid msgid") }
            var task: [String: Any] = ["userid": m.sender, "status": m.sentAtMs == nil ? 0 : 2]
            if let at = m.sentAtMs { task["send_time"] = Int(at / 1000) }
            return jsonResponse(["errcode": 0, "errmsg": "ok", "task_list": [task], "next_cursor": ""])
        }
    }

    /// A page of `rows` from the request's `cursor` (an offset here) and `limit` (WeCom takes the
    /// default when it is above the maximum), with the next cursor ("" at the end).
    static func page(_ rows: [[String: Any]], body: [String: Any], maxLimit: Int, defaultLimit: Int) -> ([[String: Any]], String) {
        var limit = (body["limit"] as? NSNumber)?.intValue ?? defaultLimit
        if limit <= 0 || limit > maxLimit { limit = defaultLimit }
        let from = min(rows.count, Int(body["cursor"] as? String ?? "") ?? 0)
        let to = min(rows.count, from + limit)
        return (Array(rows[from..<to]), to < rows.count ? String(to) : "")
    }
}
