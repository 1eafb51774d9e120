import Foundation
import GatewayCore
import Outbound

/// A campaign definition checked against the gateway (adapters, accounts, tags) with its templates
/// compiled. Building one is the validation: every problem is a `CampaignError` naming the field.
public struct CompiledCampaign: Sendable {
    public struct Content: Sendable {
        public let channel: String
        public let adapter: String
        public let account: String?
        let template: TextTemplate?
        let subject: TextTemplate?
        let text: TextTemplate?
        let html: TextTemplate?
        let link: TextTemplate?
        let data: [(String, TextTemplate)]
        /// Provider-shaped rich content every recipient's message carries (a template's `miniprogram`).
        let richContent: String?
        /// A WeCom group send's attachments (the channel `wecom`: one message per owner, not per recipient).
        var groupAttachments: [WeChatContent] = []

        public var isGroupSend: Bool { channel == WeComGroupSend.channel }
    }

    public let definition: CampaignDefinition
    public let audience: TagExpression
    /// Variant name -> its content per channel, in fallback order.
    let contents: [String: [Content]]
    public let startAt: Int64?
    public let expiresAt: Int64?
    /// Channels whose marketing needs a granted consent (`contactRules.requireOptIn`).
    let requireOptIn: Set<String>
    /// Set when the campaign tracks its links (`trackLinks: true`).
    let linkTokens: LinkTokens?

    public static let defaultLifetimeMs: Int64 = 72 * 3_600_000

    /// A variant sends on the `wecom` channel: its recipients join their owners' group-send tasks at planning.
    var hasGroupSend: Bool { contents.values.contains { $0.contains(where: \.isGroupSend) } }

    /// `knownTags` nil and `now` nil skip the checks that only matter when a marketer submits it (tags
    /// that exist, an expiry not yet past): a running campaign is compiled again by each planner.
    public init(_ d: CampaignDefinition, config: GatewayConfig, catalog: AdapterCatalog, knownTags: Set<String>?, now: Int64?) throws {
        definition = d
        requireOptIn = config.contactRules.requireOptIn
        if d.trackLinks == true {
            guard let tokens = LinkTokens(config.outbound) else {
                throw CampaignError("trackLinks", "needs outbound.linkSecret (SCRM_LINK_SECRET), which signs the tracked links")
            }
            linkTokens = tokens
        } else {
            linkTokens = nil
        }
        if let goal = d.goal {
            guard (1...64).contains(goal.event.utf8.count), goal.event.utf8.allSatisfy({ IdentityInput.isTokenByte($0) || $0 == 0x2E }) else {
                throw CampaignError("goal.event", "must be an event type such as web.register (letters, digits, ., -, _)")
            }
            guard (1...720).contains(goal.withinHours) else { throw CampaignError("goal.withinHours", "must be 1 to 720") }
        }
        guard (1...200).contains(d.name.count) else { throw CampaignError("name", "must be 1 to 200 characters") }
        let expression: TagExpression
        do {
            expression = try TagExpression.parse(d.audience)
        } catch let e as TagExpression.ParseError {
            throw CampaignError("audience", e.description, code: "invalid_expression")
        }
        audience = expression
        let unknown = knownTags.map { expression.tags.subtracting($0).sorted() } ?? []
        if !unknown.isEmpty { throw CampaignError("audience", "unknown tag(s): \(unknown.joined(separator: ", "))", code: "unknown_tag") }
        try Self.checkFields(audience, config: config)

        guard (1...3).contains(d.channels.count) else { throw CampaignError("channels", "give 1 to 3 channels, in fallback order") }
        let variants = d.effectiveVariants
        guard variants.count <= 26 else { throw CampaignError("variants", "at most 26 variants") }
        var names = Set<String>()
        for (i, v) in variants.enumerated() {
            guard (1...32).contains(v.name.utf8.count), v.name.utf8.allSatisfy({ IdentityInput.isTokenByte($0) }), names.insert(v.name).inserted else {
                throw CampaignError("variants[\(i)].name", "must be a unique name of 1 to 32 letters, digits, - or _")
            }
            guard (1...10_000).contains(v.weight) else { throw CampaignError("variants[\(i)].weight", "must be 1 to 10000") }
            for key in (v.content ?? [:]).keys where !d.channels.contains(where: { $0.channel == key }) {
                throw CampaignError("variants[\(i)].content.\(key)", "names a channel the campaign does not use")
            }
        }
        if let h = d.holdoutPercent, !(0..<100).contains(h) { throw CampaignError("holdoutPercent", "must be at least 0 and below 100") }
        if let r = d.ratePerSecond, !(r > 0 && r <= 100_000) { throw CampaignError("ratePerSecond", "must be above 0 and at most 100000") }

        var seen = Set<String>()
        var contents = [String: [Content]]()
        for v in variants {
            contents[v.name] = try d.channels.enumerated().map { i, c in
                if v.name == variants[0].name, !seen.insert(c.channel).inserted { throw CampaignError("channels[\(i)].channel", "\(c.channel) appears twice") }
                return try Self.compile(c.overlaid(with: v.content?[c.channel]), at: "channels[\(i)]", config: config, catalog: catalog)
            }
        }
        self.contents = contents

        func time(_ field: String, _ value: String?) throws -> Int64? {
            guard let value else { return nil }
            guard let ms = CampaignDefinition.milliseconds(value) else { throw CampaignError(field, "must be an ISO 8601 time with offset, e.g. 2026-12-01T09:00:00+08:00") }
            return ms
        }
        startAt = try time("startAt", d.startAt)
        let expires = try time("expiresAt", d.expiresAt)
        if let s = startAt, let e = expires, e <= s { throw CampaignError("expiresAt", "must be after startAt") }
        if let e = expires, let now, e <= now { throw CampaignError("expiresAt", "is already past") }
        expiresAt = expires
    }

    /// Checks an audience expression: the accounts, consent channels and attributes it names, and its cost.
    public static func checkFields(_ e: TagExpression, config: GatewayConfig) throws {
        do { try e.checkCost() } catch { throw CampaignError("audience", error.reason, code: "expression_too_costly") }
        try checkNames(e, config: config)
    }

    static func checkNames(_ e: TagExpression, config: GatewayConfig) throws {
        switch e {
        case .field(.account, let a):
            guard config.account(a) != nil || config.douyin.account(a) != nil else {
                throw CampaignError("audience", "account:\(a) is not a configured account", code: "unknown_account")
            }
        case .field(.consent, let c):
            let parts = c.split(separator: ":", maxSplits: 1).map(String.init)
            guard ["wechat", "sms", "email"].contains(parts[0]), parts.count == 1 || (parts[0] == "wechat" && config.account(parts[1]) != nil) else {
                throw CampaignError("audience", "consent:\(c) must be consent:wechat, consent:wechat:<account>, consent:sms or consent:email", code: "invalid_expression")
            }
        case .attribute(let name, let cmp, let value):
            do { _ = try config.customers.attributes.predicate(name, cmp, value, nowMs: 0) } catch let e as CustomerAttributes.Invalid {
                throw CampaignError("audience", e.description, code: "invalid_expression")
            }
        case .not(let inner): try checkNames(inner, config: config)
        case .and(let es), .or(let es): for x in es { try checkNames(x, config: config) }
        case .tag, .field, .score: break
        }
    }

    static func compile(_ c: CampaignDefinition.ChannelContent, at path: String, config: GatewayConfig, catalog: AdapterCatalog) throws -> Content {
        if c.channel == WeComGroupSend.channel { return try compileGroupSend(c, at: path, config: config) }
        if c.attachments != nil { throw CampaignError(path + ".attachments", "are for the wecom channel (a WeCom group send)") }
        guard let channel = AdapterSpec.Channel(rawValue: c.channel) else { throw CampaignError(path + ".channel", "must be wechat, sms, email, douyin or wecom") }
        let adapterName = c.adapter ?? config.outbound.channels[channel.rawValue] ?? ""
        guard let adapter = catalog[adapterName], adapter.spec.channel == channel else {
            throw CampaignError(path + ".adapter", "adapter \(adapterName) is not enabled for channel \(channel.rawValue)", code: "unknown_adapter")
        }
        if channel == .wechat {
            guard let a = c.account, config.account(a) != nil else { throw CampaignError(path + ".account", "must name a configured account", code: "unknown_account") }
        }
        if channel == .douyin {
            // Each recipient only inside the 24 h window its last private message opened; the rest are skipped.
            guard let a = c.account, config.douyin.account(a) != nil else {
                throw CampaignError(path + ".account", "must name a configured Douyin account (douyin.accounts)", code: "unknown_account")
            }
        }
        func t(_ field: String, _ s: String?, cap: Int) throws -> TextTemplate? {
            guard let s else { return nil }
            guard s.utf8.count <= cap else { throw CampaignError("\(path).\(field)", "exceeds \(cap) bytes") }
            do { return try TextTemplate(s, path: "\(path).\(field)") } catch let e as ConfigError { throw CampaignError(e.path, e.reason) }
        }
        var data = [(String, TextTemplate)]()
        for (k, v) in (c.data ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard let tt = try t("data.\(k)", v, cap: 2048) else { continue }
            data.append((k, tt))
        }
        guard data.count <= 50 else { throw CampaignError(path + ".data", "at most 50 fields") }
        if channel == .email {
            guard c.subject != nil, c.html != nil || c.text != nil else { throw CampaignError(path, "email needs a subject and html or text") }
        } else if c.template == nil && c.text == nil {
            throw CampaignError(path, "\(channel.rawValue) needs a template (or text)")
        }
        if let mp = c.miniprogram {
            guard adapter.renders.name == "wechat-template" else {
                throw CampaignError(path + ".miniprogram", "is for WeChat template messages (wechat-template), not \(adapterName)")
            }
            if let problem = mp.problem { throw CampaignError(path + ".miniprogram", problem) }
        }
        return Content(
            channel: channel.rawValue, adapter: adapterName, account: c.account, template: try t("template", c.template, cap: 256),
            subject: try t("subject", c.subject, cap: 998), text: try t("text", c.text, cap: 16_384), html: try t("html", c.html, cap: 262_144),
            link: try t("link", c.link, cap: 2048), data: data, richContent: c.miniprogram?.templateContent.text)
    }
}

extension CompiledCampaign {
    /// The `wecom` channel: a group-send task per owner (WeCom account with the customer-contact
    /// secret), one message for all of an owner's customers, so its text cannot name customer fields.
    static func compileGroupSend(_ c: CampaignDefinition.ChannelContent, at path: String, config: GatewayConfig) throws -> Content {
        guard let a = c.account, let account = config.account(a), account.platform == .wecom else {
            throw CampaignError(path + ".account", "must name a configured WeCom account", code: "unknown_account")
        }
        guard !(account.appSecret ?? "").isEmpty else {
            throw CampaignError(path + ".account", "\(a) has no appSecret (the customer-contact secret WeCom's group send needs)", code: "unknown_account")
        }
        for (field, value) in [("template", c.template), ("subject", c.subject), ("html", c.html), ("link", c.link)] where value != nil {
            throw CampaignError("\(path).\(field)", "a WeCom group send takes text and attachments")
        }
        if c.data != nil || c.miniprogram != nil || c.adapter != nil { throw CampaignError(path, "a WeCom group send takes text and attachments") }
        let attachments = c.attachments ?? []
        if let problem = WeComGroupSend.problem(text: c.text, attachments: attachments) { throw CampaignError(path, problem) }
        var text: TextTemplate?
        if let t = c.text, !t.isEmpty {
            do { text = try TextTemplate(t, path: path + ".text") } catch let e as ConfigError { throw CampaignError(e.path, e.reason) }
            guard text!.isLiteral else {
                throw CampaignError(path + ".text", "a WeCom group send is one message for all of an owner's customers: it cannot use {{variables}}")
            }
        }
        var content = Content(
            channel: WeComGroupSend.channel, adapter: "wecom-group-send", account: a, template: nil, subject: nil, text: text, html: nil, link: nil, data: [],
            richContent: nil)
        content.groupAttachments = attachments
        return content
    }
}

/// A campaign definition the gateway cannot run, with the field at fault.
public struct CampaignError: Error, Equatable, CustomStringConvertible {
    public let field: String
    public let reason: String
    public let code: String

    init(_ field: String, _ reason: String, code: String = "invalid_campaign") {
        self.field = field
        self.reason = reason
        self.code = code
    }

    public var description: String { "\(field): \(reason)" }
}
