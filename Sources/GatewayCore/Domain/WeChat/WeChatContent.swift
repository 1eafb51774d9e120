/// One WeChat message body: text, an image (a media id from `media/upload`), news articles, or a
/// mini-program card. The same type is a passive reply (`ReplyXML.render`: text, image, news) and a
/// customer-service message (`customServiceJSON`: all four; a card can only go this way, so a card
/// reply is sent through the customer-service API right after the callback is answered).
public enum WeChatContent: Codable, Sendable, Equatable {
    case text(String)
    case image(mediaId: String)
    case news([Article])
    case miniprogram(MiniProgramCard)

    public struct Article: Codable, Sendable, Equatable {
        public var title: String
        public var description: String?
        public var url: String
        public var picUrl: String?

        public init(title: String, description: String? = nil, url: String, picUrl: String? = nil) {
            self.title = title
            self.description = description
            self.url = url
            self.picUrl = picUrl
        }
    }

    public struct MiniProgramCard: Codable, Sendable, Equatable {
        public var title: String
        /// The mini-program's appid (`wx...`), linked to the Official Account.
        public var appId: String
        public var pagePath: String
        /// A temporary image media id (`media/upload`), the card's picture (520 x 416 recommended).
        public var thumbMediaId: String

        public init(title: String, appId: String, pagePath: String, thumbMediaId: String) {
            self.title = title
            self.appId = appId
            self.pagePath = pagePath
            self.thumbMediaId = thumbMediaId
        }
    }

    /// WeChat's limit for a text message, in UTF-8 bytes.
    public static let maxTextBytes = 2_048

    /// Whether WeChat takes it as a passive reply (XML in the callback's answer).
    public var isPassive: Bool { if case .miniprogram = self { false } else { true } }

    /// WeChat's `msgtype`.
    public var messageType: String {
        switch self {
        case .text: "text"
        case .image: "image"
        case .news: "news"
        case .miniprogram: "miniprogrampage"
        }
    }

    enum CodingKeys: String, CodingKey { case type, text, mediaId, articles, title, appId, pagePath, thumbMediaId }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        switch try c.decode(String.self, forKey: .type) {
        case "text": self = .text(try c.decode(String.self, forKey: .text))
        case "image": self = .image(mediaId: try c.decode(String.self, forKey: .mediaId))
        case "news": self = .news(try c.decode([Article].self, forKey: .articles))
        case "miniprogram":
            self = .miniprogram(
                MiniProgramCard(
                    title: try c.decode(String.self, forKey: .title), appId: try c.decode(String.self, forKey: .appId),
                    pagePath: try c.decode(String.self, forKey: .pagePath), thumbMediaId: try c.decode(String.self, forKey: .thumbMediaId)))
        case let other:
            throw DecodingError.dataCorruptedError(forKey: .type, in: c, debugDescription: "unknown type '\(other)' (text, image, news or miniprogram)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .text(let t):
            try c.encode("text", forKey: .type)
            try c.encode(t, forKey: .text)
        case .image(let m):
            try c.encode("image", forKey: .type)
            try c.encode(m, forKey: .mediaId)
        case .news(let a):
            try c.encode("news", forKey: .type)
            try c.encode(a, forKey: .articles)
        case .miniprogram(let card):
            try c.encode("miniprogram", forKey: .type)
            try c.encode(card.title, forKey: .title)
            try c.encode(card.appId, forKey: .appId)
            try c.encode(card.pagePath, forKey: .pagePath)
            try c.encode(card.thumbMediaId, forKey: .thumbMediaId)
        }
    }

    /// The body of a customer-service message, less `touser` (which the adapter adds): WeChat's exact
    /// shape per `msgtype`. A customer-service news message carries one article.
    public var customServiceJSON: JSONValue {
        switch self {
        case .text(let t): return .object(["msgtype": .string("text"), "text": .object(["content": .string(t)])])
        case .image(let m): return .object(["msgtype": .string("image"), "image": .object(["media_id": .string(m)])])
        case .news(let articles):
            let items: [JSONValue] = articles.map { a in
                var o: [String: JSONValue] = ["title": .string(a.title), "url": .string(a.url)]
                if let d = a.description { o["description"] = .string(d) }
                if let p = a.picUrl { o["picurl"] = .string(p) }
                return .object(o)
            }
            return .object(["msgtype": .string("news"), "news": .object(["articles": .array(items)])])
        case .miniprogram(let card):
            return .object([
                "msgtype": .string("miniprogrampage"),
                "miniprogrampage": .object([
                    "title": .string(card.title), "appid": .string(card.appId), "pagepath": .string(card.pagePath),
                    "thumb_media_id": .string(card.thumbMediaId),
                ]),
            ])
        }
    }

    /// Every problem, each naming where it is; `maxArticles`: 1 in a reply to a message and in a
    /// customer-service message, up to 8 in a reply to an event.
    public func problems(at path: String, maxArticles: Int) -> [String] {
        switch self {
        case .text(let t):
            return t.isEmpty || t.utf8.count > Self.maxTextBytes ? ["\(path).text: 1 to \(Self.maxTextBytes) bytes"] : []
        case .image(let m):
            return Self.isMediaId(m) ? [] : ["\(path).mediaId: a media id from media/upload (1 to 128 letters, digits, - and _)"]
        case .news(let articles):
            var out = [String]()
            if articles.isEmpty || articles.count > maxArticles {
                out.append("\(path).articles: 1 to \(maxArticles) article\(maxArticles == 1 ? " (WeChat's limit in a reply to a message or a customer-service message)" : "s")")
            }
            for (i, a) in articles.enumerated() {
                if a.title.isEmpty || a.title.count > 64 { out.append("\(path).articles[\(i)].title: 1 to 64 characters") }
                if (a.description ?? "").count > 512 { out.append("\(path).articles[\(i)].description: at most 512 characters") }
                if !Self.isWebURL(a.url) { out.append("\(path).articles[\(i)].url: an http(s) URL of at most 1024 characters") }
                if let p = a.picUrl, !Self.isWebURL(p) { out.append("\(path).articles[\(i)].picUrl: an http(s) URL of at most 1024 characters") }
            }
            return out
        case .miniprogram(let card):
            var out = [String]()
            if card.title.isEmpty || card.title.count > 64 { out.append("\(path).title: 1 to 64 characters") }
            if !Self.isMiniProgramAppId(card.appId) { out.append("\(path).appId: the mini-program's appid (wx and 16 letters or digits)") }
            if card.pagePath.isEmpty || card.pagePath.utf8.count > 1024 { out.append("\(path).pagePath: 1 to 1024 bytes") }
            if !Self.isMediaId(card.thumbMediaId) { out.append("\(path).thumbMediaId: a media id from media/upload") }
            return out
        }
    }

    public static func isMediaId(_ m: String) -> Bool {
        (1...128).contains(m.utf8.count) && m.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 | 0x20 >= 97 && $0 | 0x20 <= 122) || $0 == 45 || $0 == 95 }
    }

    public static func isMiniProgramAppId(_ a: String) -> Bool {
        a.hasPrefix("wx") && (4...32).contains(a.utf8.count) && a.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 | 0x20 >= 97 && $0 | 0x20 <= 122) }
    }

    public static func isWebURL(_ u: String) -> Bool {
        u.utf8.count <= 1024 && (u.hasPrefix("https://") || u.hasPrefix("http://")) && u.count > 8
            && !u.unicodeScalars.contains { $0.value < 0x21 || $0 == "\"" || $0 == "<" || $0 == ">" }
    }
}
