import Foundation

/// What a marketer submits to create a campaign (JSON body, or YAML through `scrmctl`).
public struct CampaignDefinition: Codable, Sendable, Equatable {
    public var name: String
    /// A tag expression (`TagExpression`).
    public var audience: String
    /// Fallback order: each recipient gets the first channel it is reachable on (identity and consent).
    public var channels: [ChannelContent]
    /// A/B variants; none = one variant named "default".
    public var variants: [Variant]?
    /// Percent of the audience (0..<100) kept out as a control group: planned, never messaged.
    public var holdoutPercent: Double?
    /// ISO 8601; absent = when started.
    public var startAt: String?
    /// ISO 8601; absent = 72 hours after the start. Nothing is sent after it.
    public var expiresAt: String?
    /// Messages per second for this campaign, below the adapters' own limits.
    public var ratePerSecond: Double?
    /// Transactional campaigns skip frequency caps and quiet hours (and go in the priority lane).
    public var transactional: Bool?
    /// Rewrite every link (`link`, URLs in `text` and `html`) to a tracked `/l/{token}` one, and add an
    /// open pixel to email: clicks and opens are counted per variant and channel.
    public var trackLinks: Bool?
    /// What counts as a conversion: an event of this type from a recipient (or a hold-out member)
    /// within `withinHours` after the send (for the hold-out: after the campaign started).
    public var goal: Goal?

    public struct Goal: Codable, Sendable, Equatable {
        public var event: String
        public var withinHours: Int

        public init(event: String, withinHours: Int) {
            self.event = event
            self.withinHours = withinHours
        }
    }

    /// The content of one channel; template fields are Mustache over the customer (`{{profile.nickname}}`).
    public struct ChannelContent: Codable, Sendable, Equatable {
        public var channel: String
        public var adapter: String?
        /// WeChat: the official account that sends.
        public var account: String?
        public var template: String?
        public var subject: String?
        public var text: String?
        public var html: String?
        public var link: String?
        /// Template variables (WeChat template fields, SMS template parameters).
        public var data: [String: String]?
        /// A WeChat template message opens this mini-program page (where the client can; else `link`).
        public var miniprogram: MiniProgramLink?
        /// A WeCom group send's attachments (image, news with one article, miniprogram), after `text`.
        public var attachments: [WeChatContent]?

        public init(channel: String, account: String? = nil, template: String? = nil, text: String? = nil, data: [String: String]? = nil) {
            self.channel = channel
            self.account = account
            self.template = template
            self.text = text
            self.data = data
        }

        /// This content with a variant's fields laid over it.
        public func overlaid(with o: ContentOverride?) -> ChannelContent {
            guard let o else { return self }
            var c = self
            c.template = o.template ?? c.template
            c.subject = o.subject ?? c.subject
            c.text = o.text ?? c.text
            c.html = o.html ?? c.html
            c.link = o.link ?? c.link
            if let d = o.data { c.data = (c.data ?? [:]).merging(d) { $1 } }
            return c
        }
    }

    /// A mini-program page a WeChat template message opens: the mini-program's appid and the page path.
    public struct MiniProgramLink: Codable, Sendable, Equatable {
        public var appId: String
        public var pagePath: String

        public init(appId: String, pagePath: String) {
            self.appId = appId
            self.pagePath = pagePath
        }

        public var problem: String? {
            WeChatContent.isMiniProgramAppId(appId) && (1...1024).contains(pagePath.utf8.count)
                ? nil : "needs the mini-program's appid (wx...) and a pagePath of 1 to 1024 bytes"
        }

        /// The template message's `miniprogram` member, in the message's `content`.
        public var templateContent: JSONValue { .object(["miniprogram": .object(["appid": .string(appId), "pagepath": .string(pagePath)])]) }
    }

    public struct ContentOverride: Codable, Sendable, Equatable {
        public var template: String?
        public var subject: String?
        public var text: String?
        public var html: String?
        public var link: String?
        public var data: [String: String]?
    }

    public struct Variant: Codable, Sendable, Equatable {
        public var name: String
        public var weight: Int
        /// Per channel, what differs from the campaign's content.
        public var content: [String: ContentOverride]?

        public init(name: String, weight: Int, content: [String: ContentOverride]? = nil) {
            self.name = name
            self.weight = weight
            self.content = content
        }
    }

    public init(name: String, audience: String, channels: [ChannelContent]) {
        self.name = name
        self.audience = audience
        self.channels = channels
    }

    public var effectiveVariants: [Variant] { (variants ?? []).isEmpty ? [Variant(name: "default", weight: 1)] : variants! }

    /// Which group a customer falls in: the same answer every time (a hash of campaign and customer),
    /// so a re-planned recipient keeps its variant. Nil = hold-out.
    public func variant(campaign: String, customer: String) -> Variant? {
        let h = Self.fnv1a(campaign + "/" + customer)
        let bucket = Double(h % 1_000_000) / 10_000  // 0..<100, in steps of 0.0001
        if bucket < (holdoutPercent ?? 0) { return nil }
        let variants = effectiveVariants
        let total = variants.reduce(0) { $0 + $1.weight }
        // A second, independent hash for the split, so hold-out and variants do not correlate.
        var pick = Int(Self.fnv1a(customer + "#" + campaign) % UInt64(max(total, 1)))
        for v in variants {
            if pick < v.weight { return v }
            pick -= v.weight
        }
        return variants.last
    }

    static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01b3
        }
        // Final avalanche (splitmix64), so nearby inputs spread over the whole range.
        h ^= h >> 30
        h = h &* 0xbf58_476d_1ce4_e5b9
        h ^= h >> 27
        h = h &* 0x94d0_49bb_1331_11eb
        return h ^ (h >> 31)
    }

    /// Parses an ISO 8601 time (with offset or Z) to ms.
    public static func milliseconds(_ iso: String) -> Int64? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        if let d = f.date(from: iso) { return Int64(d.timeIntervalSince1970 * 1000) }
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: iso).map { Int64($0.timeIntervalSince1970 * 1000) }
    }
}
