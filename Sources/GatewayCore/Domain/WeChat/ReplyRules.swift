/// What a follower gets back, per account, managed at run time (`GET|PUT /api/v1/accounts/{id}/replies`):
/// a welcome on subscribe (with per-scene overrides, which also answer a follower scanning that code
/// again), keyword rules for text messages (first match wins), replies to menu `CLICK` keys, and a
/// default for any other message. The config file's `autoReply` rules are the initial state.
public struct ReplyRules: Codable, Sendable, Equatable {
    public var welcome: WeChatContent?
    public var sceneWelcomes: [String: WeChatContent]
    public var keywords: [KeywordRule]
    public var menu: [String: WeChatContent]
    public var fallback: WeChatContent?

    public static let maxKeywords = 200
    public static let maxScenes = 1_000
    public static let maxMenuKeys = 200

    enum CodingKeys: String, CodingKey {
        case welcome, sceneWelcomes, keywords, menu
        case fallback = "default"
    }

    public init(
        welcome: WeChatContent? = nil, sceneWelcomes: [String: WeChatContent] = [:], keywords: [KeywordRule] = [], menu: [String: WeChatContent] = [:],
        fallback: WeChatContent? = nil
    ) {
        self.welcome = welcome
        self.sceneWelcomes = sceneWelcomes
        self.keywords = keywords
        self.menu = menu
        self.fallback = fallback
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        welcome = try c.decodeIfPresent(WeChatContent.self, forKey: .welcome)
        sceneWelcomes = try c.decodeIfPresent([String: WeChatContent].self, forKey: .sceneWelcomes) ?? [:]
        keywords = try c.decodeIfPresent([KeywordRule].self, forKey: .keywords) ?? []
        menu = try c.decodeIfPresent([String: WeChatContent].self, forKey: .menu) ?? [:]
        fallback = try c.decodeIfPresent(WeChatContent.self, forKey: .fallback)
    }

    /// The config file's keyword rules, as text replies.
    public init(account: Account) {
        self.init(keywords: account.autoReplies.map { r in
            KeywordRule(match: KeywordRule.Match(rawValue: r.match.rawValue) ?? .exact, keyword: r.keyword, caseSensitive: r.caseSensitive, reply: .text(r.reply))
        })
    }

    /// Every problem, each naming where it is (`keywords[2].keyword`); empty when the rules are valid.
    public func problems() -> [String] {
        var out = [String]()
        if let welcome { out += welcome.problems(at: "welcome", maxArticles: 8) }
        if sceneWelcomes.count > Self.maxScenes { out.append("sceneWelcomes: at most \(Self.maxScenes) scenes") }
        for (scene, reply) in sceneWelcomes.sorted(by: { $0.key < $1.key }) {
            if !QRScene.isValidName(scene) { out.append("sceneWelcomes.\(scene): \(QRScene.nameRule)") }
            out += reply.problems(at: "sceneWelcomes.\(scene)", maxArticles: 8)
        }
        if keywords.count > Self.maxKeywords { out.append("keywords: at most \(Self.maxKeywords) rules") }
        for (i, rule) in keywords.enumerated() {
            let at = "keywords[\(i)]"
            if rule.keyword.isEmpty || rule.keyword.count > BoundedRegex.maxPatternLength {
                out.append("\(at).keyword: 1 to \(BoundedRegex.maxPatternLength) characters")
            } else if rule.match == .regex {
                do { _ = try BoundedRegex(rule.keyword, caseSensitive: rule.caseSensitive) } catch { out.append("\(at).keyword: \(error)") }
            }
            // WeChat takes one article in a reply to a message (up to 8 for events).
            out += rule.reply.problems(at: "\(at).reply", maxArticles: 1)
        }
        if menu.count > Self.maxMenuKeys { out.append("menu: at most \(Self.maxMenuKeys) keys") }
        for (key, reply) in menu.sorted(by: { $0.key < $1.key }) {
            if key.isEmpty || key.utf8.count > MenuButton.maxKeyBytes { out.append("menu.\(key): a key is 1 to \(MenuButton.maxKeyBytes) bytes") }
            out += reply.problems(at: "menu.\(key)", maxArticles: 8)
        }
        if let fallback { out += fallback.problems(at: "default", maxArticles: 1) }
        return out
    }
}

/// A keyword rule: a text message that matches gets `reply`.
public struct KeywordRule: Codable, Sendable, Equatable {
    public enum Match: String, Codable, Sendable { case exact, prefix, contains, regex }
    public var match: Match
    public var keyword: String
    public var caseSensitive: Bool
    public var reply: WeChatContent

    public init(match: Match, keyword: String, caseSensitive: Bool = false, reply: WeChatContent) {
        self.match = match
        self.keyword = keyword
        self.caseSensitive = caseSensitive
        self.reply = reply
    }

    enum CodingKeys: String, CodingKey { case match, keyword, caseSensitive, reply }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let raw = try c.decode(String.self, forKey: .match)
        guard let match = Match(rawValue: raw) else {
            throw DecodingError.dataCorruptedError(forKey: .match, in: c, debugDescription: "'\(raw)' is not exact, prefix, contains or regex")
        }
        self.match = match
        keyword = try c.decode(String.self, forKey: .keyword)
        caseSensitive = try c.decodeIfPresent(Bool.self, forKey: .caseSensitive) ?? false
        reply = try c.decode(WeChatContent.self, forKey: .reply)
    }
}

/// `ReplyRules` ready to answer: regular expressions compiled once per change.
public struct CompiledReplies: Sendable {
    public let rules: ReplyRules
    let matchers: [(KeywordRule, BoundedRegex?)]

    public init(_ rules: ReplyRules) {
        self.rules = rules
        matchers = rules.keywords.map { r in (r, r.match == .regex ? try? BoundedRegex(r.keyword, caseSensitive: r.caseSensitive) : nil) }
    }

    /// The reply to a callback, if any: subscribe -> the scene's welcome or the welcome; SCAN of a scene
    /// with its own welcome -> that; CLICK -> the key's reply; text -> the first keyword rule that
    /// matches, else the default; any other message -> the default.
    public func reply(to message: InboundMessage) -> WeChatContent? {
        switch message.kind {
        case .event("subscribe"): return message.scene.flatMap { rules.sceneWelcomes[$0] } ?? rules.welcome
        case .event("SCAN"): return message.scene.flatMap { rules.sceneWelcomes[$0] }
        case .event("CLICK"): return rules.menu[message.eventKey]
        case .message("text"):
            let text = message["Content"] ?? ""
            for (rule, regex) in matchers where Self.matches(rule, regex, text) { return rule.reply }
            return rules.fallback
        case .message: return rules.fallback
        default: return nil
        }
    }

    static func matches(_ rule: KeywordRule, _ regex: BoundedRegex?, _ text: String) -> Bool {
        if rule.match == .regex { return regex?.evaluate(text) == .match }
        let t = rule.caseSensitive ? text : text.lowercased()
        let k = rule.caseSensitive ? rule.keyword : rule.keyword.lowercased()
        switch rule.match {
        case .prefix: return t.hasPrefix(k)
        case .exact: return t == k
        case .contains: return t.contains(k)
        case .regex: return false
        }
    }
}
