import Foundation

/// One Douyin open-platform webhook, as the platform documents it: `{"event", "client_key",
/// "from_user_id", "to_user_id", "content", "log_id"}`, `content` a serialized JSON object (or an
/// object). What the gateway takes:
/// - `verify_webhook`: the address check; `content.challenge` is echoed back.
/// - `im_receive_msg`: a private message the enterprise account received; `from_user_id` is the
///   sender's open_id; `content` has `message_type`, `text`, `server_message_id`,
///   `conversation_short_id` and `create_time`.
/// - `new_follow_action`: `from_user_id` followed the account; `content.action_time`.
/// Any other event is acknowledged and not stored.
public struct DouyinEvent: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case verify(challenge: JSONValue)
        case message(type: String)
        case follow
        case other(String)
    }

    public var kind: Kind
    public var clientKey: String
    /// The Douyin user's open_id (the sender or the follower).
    public var fromUser: String
    /// When it happened, by the platform (ms); nil for the address check and ignored events.
    public var atMs: Int64?
    public var logId: String?
    /// `content`'s scalar fields, as text.
    public var content: [String: String]

    public struct Invalid: Error, Equatable {
        public let message: String
    }

    public static let maxFieldLength = 4096

    public static func parse(_ bytes: [UInt8]) throws(Invalid) -> DouyinEvent {
        guard case .object(let body)? = JSONValue.parse(bytes) else { throw Invalid(message: "body must be a JSON object") }
        guard let event = body["event"]?.scalarText, !event.isEmpty, event.count <= 64 else { throw Invalid(message: "event is required") }
        var content = [String: JSONValue]()
        switch body["content"] {
        case .object(let o)?: content = o
        case .string(let s)?:
            guard case .object(let o)? = JSONValue.parse(Array(s.utf8)) else { throw Invalid(message: "content: a JSON object (or one serialized)") }
            content = o
        case nil, .null?: break
        default: throw Invalid(message: "content: a JSON object (or one serialized)")
        }
        var scalars = [String: String]()
        for (k, v) in content {
            guard let t = v.scalarText else { continue }
            guard t.utf8.count <= maxFieldLength else { throw Invalid(message: "content.\(k): too long") }
            scalars[k] = t
        }
        var e = DouyinEvent(
            kind: .other(event), clientKey: body["client_key"]?.scalarText ?? "", fromUser: body["from_user_id"]?.scalarText ?? "", atMs: nil,
            logId: body["log_id"]?.scalarText, content: scalars)
        switch event {
        case "verify_webhook":
            guard let challenge = content["challenge"], challenge.scalarText != nil else { throw Invalid(message: "content.challenge is required") }
            e.kind = .verify(challenge: challenge)
            return e
        case "im_receive_msg":
            let type = scalars["message_type"] ?? "text"
            guard !type.isEmpty, type.count <= 32, type.utf8.allSatisfy(IdentityInput.isTokenByte) else { throw Invalid(message: "content.message_type: a word") }
            e.kind = .message(type: type)
            e.atMs = try time(scalars["create_time"], "content.create_time")
        case "new_follow_action":
            e.kind = .follow
            e.atMs = try time(scalars["action_time"], "content.action_time")
        default:
            return e
        }
        guard !e.fromUser.isEmpty, e.fromUser.utf8.count <= 128, e.fromUser.utf8.allSatisfy({ IdentityInput.isTokenByte($0) || $0 == UInt8(ascii: ".") })
        else { throw Invalid(message: "from_user_id: an open_id") }
        return e
    }

    /// Seconds or milliseconds since the epoch (the platform uses both), as ms.
    static func time(_ text: String?, _ what: String) throws(Invalid) -> Int64 {
        guard let text, let n = Int64(text), n > 0 else { throw Invalid(message: "\(what): a time is required") }
        return n >= 100_000_000_000 ? n : n * 1000
    }

    /// The callback's id for deduplication: the `Msg-Id` header the platform repeats on retries, else
    /// the message's own id, else the log id.
    public func dedupKey(msgId: String?) -> String? {
        for candidate in [msgId, content["server_message_id"], logId] {
            if let c = candidate, !c.isEmpty, c.utf8.count <= 200 { return c }
        }
        return nil
    }

    /// What storing it changes: the `douyin` identity, consent on a follow, the timeline entry, the
    /// reply window of a message (`sessionOpenId`), the inbound-stream record. A text's `text` is the
    /// payload's `Content`, so the keyword rules score it as they do a WeChat text.
    public func plan(account: String, dedupKey: String, nowMs: Int64) -> IngestPlan {
        let identity = Identity(kind: .douyin, account: account, value: fromUser)
        var fields = [String: String]()
        var type = "event.follow"
        var consent: (field: String, value: String)?
        var session: String?
        switch kind {
        case .message(let t):
            type = "message." + t
            fields["Content"] = content["text"]
            fields["MsgType"] = t
            fields["MsgId"] = content["server_message_id"]
            fields["conversation"] = content["conversation_short_id"]
            session = fromUser
        case .follow:
            consent = (ConsentRecord.field("douyin:\(account)"), ConsentRecord(state: "granted", at: nowMs).stored)
        case .verify, .other:
            break
        }
        let data = JSONText.object(strings: fields)
        let at = atMs ?? nowMs
        let quoted = JSONText.quote(type)
        let entry = JSONText.object([("at", String(at)), ("type", quoted), ("account", JSONText.quote(account)), ("channel", "\"douyin\""), ("data", data)])
        let sessionMessage = JSONText.object([("at", String(at)), ("direction", "\"in\""), ("type", quoted), ("data", data)])
        return IngestPlan(
            account: account, nonceKey: nil, dedupKey: Keys.dedup(account: account, sender: fromUser, key: dedupKey), identity: identity, unionId: nil,
            consent: consent, tags: [], interactionType: type, timelineEntry: entry, payload: data, sessionOpenId: session, sessionMessage: sessionMessage,
            replyMessage: nil, reply: "", now: nowMs, sceneCount: nil, owner: nil)
    }
}
