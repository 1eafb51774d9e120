/// A mass send to the followers WeChat holds under one of its tags (`message/mass/sendall` with
/// `filter.tag_id`): how subscription accounts, which have no template messages, reach a segment.
/// WeChat reports the outcome later in a MASSSENDJOBFINISH callback (`MsgID`, `Status`, `TotalCount`,
/// `FilterCount`, `SentCount`, `ErrorCount`).
public enum MassSend {
    public enum Content: Codable, Sendable, Equatable {
        case text(String)
        /// Images by media id (WeChat: permanent materials), up to 20.
        case images([String])
        /// A news article already in the account's materials (its media id).
        case mpnews(mediaId: String)

        enum CodingKeys: String, CodingKey { case type, text, mediaIds, mediaId }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            switch try c.decode(String.self, forKey: .type) {
            case "text": self = .text(try c.decode(String.self, forKey: .text))
            case "image": self = .images(try c.decode([String].self, forKey: .mediaIds))
            case "mpnews": self = .mpnews(mediaId: try c.decode(String.self, forKey: .mediaId))
            case let other:
                throw DecodingError.dataCorruptedError(forKey: .type, in: c, debugDescription: "unknown type '\(other)' (text, image or mpnews)")
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            switch self {
            case .text(let t):
                try c.encode("text", forKey: .type)
                try c.encode(t, forKey: .text)
            case .images(let ids):
                try c.encode("image", forKey: .type)
                try c.encode(ids, forKey: .mediaIds)
            case .mpnews(let id):
                try c.encode("mpnews", forKey: .type)
                try c.encode(id, forKey: .mediaId)
            }
        }

        public var problem: String? {
            switch self {
            case .text(let t): return t.isEmpty || t.utf8.count > WeChatContent.maxTextBytes ? "content.text: 1 to \(WeChatContent.maxTextBytes) bytes" : nil
            case .images(let ids):
                return (1...20).contains(ids.count) && ids.allSatisfy(WeChatContent.isMediaId(_:)) ? nil : "content.mediaIds: 1 to 20 media ids"
            case .mpnews(let id): return WeChatContent.isMediaId(id) ? nil : "content.mediaId: the news material's media id"
            }
        }
    }

    /// The `sendall` body, WeChat's exact shape. `clientMsgId` makes a repeat within 24 h a no-op.
    public static func body(tagId: Int, content: Content, clientMsgId: String) -> JSONValue {
        var body: [String: JSONValue] = [
            "filter": .object(["is_to_all": .bool(false), "tag_id": .int(Int64(tagId))]), "clientmsgid": .string(clientMsgId),
        ]
        switch content {
        case .text(let t):
            body["msgtype"] = .string("text")
            body["text"] = .object(["content": .string(t)])
        case .images(let ids):
            body["msgtype"] = .string("image")
            body["images"] = .object(["media_ids": .array(ids.map(JSONValue.string)), "need_open_comment": .int(0), "only_fans_can_comment": .int(0)])
        case .mpnews(let id):
            body["msgtype"] = .string("mpnews")
            body["mpnews"] = .object(["media_id": .string(id)])
            body["send_ignore_reprint"] = .int(0)
        }
        return .object(body)
    }
}

/// How many mass sends an account may make per day or month (Beijing time), which WeChat counts.
public struct MassSendQuota: Sendable, Equatable {
    public enum Period: String, Sendable { case day, month }
    public var period: Period
    public var limit: Int

    public init(period: Period, limit: Int) {
        self.period = period
        self.limit = limit
    }

    /// The Beijing-time day or month `nowMs` falls in (`2026-12` or `2026-12-02`), and when it ends (ms).
    public func window(nowMs: Int64) -> (id: String, endsAtMs: Int64) {
        let beijing = nowMs + 8 * 3_600_000
        let day = beijing / 86_400_000
        let (y, m, d) = CivilDate.from(daysSince1970: day)
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        switch period {
        case .day: return ("\(y)-\(two(m))-\(two(d))", (day + 1) * 86_400_000 - 8 * 3_600_000)
        case .month:
            return ("\(y)-\(two(m))", (day - d + 1 + CivilDate.daysInMonth(year: y, month: m)) * 86_400_000 - 8 * 3_600_000)
        }
    }
}
