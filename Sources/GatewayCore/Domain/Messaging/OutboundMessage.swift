/// One outbound message as the engine keeps it (`msg:{id}` in Redis).
public struct OutboundMessage: Sendable, Equatable {
    public enum State: String, Sendable, CaseIterable {
        case queued, sending, retrying, sent, delivered, failed, skipped

        /// No further provider call will be made.
        public var isTerminal: Bool { [.sent, .delivered, .failed, .skipped].contains(self) }
    }

    public enum Lane: String, Sendable { case transactional, bulk }

    public var id: String
    public var channel: String
    public var adapter: String
    public var lane: Lane
    public var state: State
    /// Why it was skipped or failed (`email_unsubscribed`, `outcome_unknown`, `permanent`...).
    public var reason: String?
    public var attempts: Int
    public var providerId: String?
    public var lastError: String?
    public var idempotencyKey: String
    /// Either a customer (the address is looked up at send time) or a raw address.
    public var customerId: String?
    public var to: String?
    public var account: String?
    public var template: String?
    public var subject: String?
    public var text: String?
    public var html: String?
    public var link: String?
    /// Template variables, as JSON text.
    public var variables: String
    /// Provider-shaped rich content, as JSON text (`content.*` in specs): a WeChat customer-service
    /// message body (`WeChatContent.customServiceJSON`), or a template message's `miniprogram`.
    public var content: String?
    public var createdAt: Int64
    public var updatedAt: Int64
    public var nextAttemptAt: Int64?
    /// The provider call in progress started then (state sending).
    public var sendingSince: Int64?
    /// When the first provider call whose outcome is unknown (timeout, crash) started: a resend is only
    /// safe within the provider's dedup window from then.
    public var doubtSince: Int64?
    /// A campaign's message: the campaign, the recipient's variant, and when the campaign stops sending.
    public var campaign: String?
    public var variant: String?
    public var expiresAt: Int64?
    /// A journey's message: `<journey>:<step id>` (its per-step counters, see `Keys.journeyStats`).
    public var journey: String?
    /// The original URLs of a message whose links are tracked, in token order (`LinkTokens`).
    public var links: [String]?
    /// A campaign message that moved to its next channel at send time: each channel tried and why it
    /// could not be used (`wechat:opted_out;sms:bad_address`).
    public var fallbacks: String?

    public init(
        id: String, channel: String, adapter: String, lane: Lane, idempotencyKey: String, customerId: String?, to: String?, account: String?,
        template: String?, subject: String?, text: String?, html: String?, link: String?, variables: String, createdAt: Int64
    ) {
        self.id = id
        self.channel = channel
        self.adapter = adapter
        self.lane = lane
        self.state = .queued
        self.attempts = 0
        self.idempotencyKey = idempotencyKey
        self.customerId = customerId
        self.to = to
        self.account = account
        self.template = template
        self.subject = subject
        self.text = text
        self.html = html
        self.link = link
        self.variables = variables
        self.createdAt = createdAt
        self.updatedAt = createdAt
    }

    /// Field/value pairs for HSET.
    public var fields: [(String, String)] {
        var f: [(String, String)] = [
            ("id", id), ("channel", channel), ("adapter", adapter), ("lane", lane.rawValue), ("state", state.rawValue), ("attempts", String(attempts)),
            ("idempotencyKey", idempotencyKey), ("variables", variables), ("createdAt", String(createdAt)), ("updatedAt", String(updatedAt)),
        ]
        let optional: [(String, String?)] = [
            ("reason", reason), ("providerId", providerId), ("lastError", lastError), ("customerId", customerId), ("to", to), ("account", account),
            ("template", template), ("subject", subject), ("text", text), ("html", html), ("link", link), ("content", content),
            ("nextAttemptAt", nextAttemptAt.map(String.init)), ("sendingSince", sendingSince.map(String.init)),
            ("doubtSince", doubtSince.map(String.init)), ("campaign", campaign), ("variant", variant), ("expiresAt", expiresAt.map(String.init)),
            ("journey", journey), ("links", links.map { JSONValue.array($0.map(JSONValue.string)).text }), ("fallbacks", fallbacks),
        ]
        for (k, v) in optional { if let v { f.append((k, v)) } }
        return f
    }

    public init?(hash h: [String: String]) {
        guard let id = h["id"], let channel = h["channel"], let adapter = h["adapter"], let state = h["state"].flatMap(State.init(rawValue:)),
            let key = h["idempotencyKey"], let created = h["createdAt"].flatMap({ Int64($0) })
        else { return nil }
        self.init(
            id: id, channel: channel, adapter: adapter, lane: Lane(rawValue: h["lane"] ?? "") ?? .bulk, idempotencyKey: key, customerId: h["customerId"],
            to: h["to"], account: h["account"], template: h["template"], subject: h["subject"], text: h["text"], html: h["html"], link: h["link"],
            variables: h["variables"] ?? "{}", createdAt: created)
        self.state = state
        reason = h["reason"]
        attempts = Int(h["attempts"] ?? "") ?? 0
        providerId = h["providerId"]
        lastError = h["lastError"]
        updatedAt = h["updatedAt"].flatMap { Int64($0) } ?? created
        nextAttemptAt = h["nextAttemptAt"].flatMap { Int64($0) }
        sendingSince = h["sendingSince"].flatMap { Int64($0) }
        doubtSince = h["doubtSince"].flatMap { Int64($0) }
        campaign = h["campaign"]
        variant = h["variant"]
        expiresAt = h["expiresAt"].flatMap { Int64($0) }
        journey = h["journey"]
        fallbacks = h["fallbacks"]
        content = h["content"]
        if let text = h["links"], case .array(let urls)? = JSONValue.parse(Array(text.utf8)) {
            links = urls.compactMap { if case .string(let s) = $0 { s } else { nil } }
        }
    }
}

/// Exponential backoff with jitter, bounded by the message's maximum age.
public struct RetryPolicy: Sendable, Equatable {
    public var baseMs: Int64 = 2_000
    public var capMs: Int64 = 600_000
    /// A message older than this is dead-lettered instead of retried.
    public var maxAgeMs: Int64 = 86_400_000

    public init(baseMs: Int64 = 2_000, capMs: Int64 = 600_000, maxAgeMs: Int64 = 86_400_000) {
        self.baseMs = baseMs
        self.capMs = capMs
        self.maxAgeMs = maxAgeMs
    }

    /// When attempt `attempts + 1` may go (after `attempts` failed ones), or nil when that is past the
    /// maximum age. `notBefore` is a provider's Retry-After or a quota reset. `random` is in 0..<1.
    public func nextAttempt(attempts: Int, createdAt: Int64, now: Int64, notBefore: Int64? = nil, random: Double) -> Int64? {
        let at = max(now + delay(afterAttempts: attempts, random: random), notBefore ?? 0)
        return at - createdAt <= maxAgeMs ? at : nil
    }

    /// The wait after `attempts` failed attempts: doubling from `baseMs` up to `capMs`, with "equal
    /// jitter" (half fixed, half random), so retries spread out but never come back at once. The one
    /// home of the backoff: the CRM queue gets its delays from here too.
    public func delay(afterAttempts attempts: Int, random: Double) -> Int64 {
        let exponent = min(max(attempts - 1, 0), 30)
        let backoff = min(capMs, baseMs << Int64(exponent))
        return backoff / 2 + Int64(Double(backoff / 2) * min(max(random, 0), 1))
    }
}

/// Whether a customer may get a message on a channel, and at which address: decided at send time.
public enum SendEligibility: Equatable, Sendable {
    case send(to: String)
    case skip(reason: String)

    /// `customer` is nil for a raw address nobody holds. `to` is the raw address, if the message had one.
    /// `requireOptIn`: channels whose marketing needs a granted consent (`contactRules.requireOptIn`).
    public static func decide(
        channel: String, account: String?, to: String?, transactional: Bool, identities: [Identity], consent: [String: ConsentRecord],
        requireOptIn: Set<String> = []
    ) -> SendEligibility {
        func state(_ key: String) -> String? { consent[key]?.state }
        // Opt-in channels: marketing needs a granted consent. A refusal keeps its own reason below.
        let refusals: Set<String> = ["revoked", "opted_out", "unsubscribed", "bounced", "complained"]
        if !transactional, requireOptIn.contains(channel), state(channel) != "granted", !refusals.contains(state(channel) ?? "") {
            return .skip(reason: "\(channel)_no_opt_in")
        }
        switch channel {
        case "wechat":
            guard let account else { return .skip(reason: "no_account") }
            if state("wechat:\(account)") == "revoked" { return .skip(reason: "wechat_unsubscribed") }
            guard let address = to ?? identities.first(where: { $0.kind == .openid && $0.account == account })?.value else {
                return .skip(reason: "no_openid")
            }
            return .send(to: address)
        case "wecom":
            guard let account else { return .skip(reason: "no_account") }
            if state("wecom:\(account)") == "revoked" { return .skip(reason: "wecom_contact_deleted") }
            guard let address = to ?? identities.first(where: { $0.kind == .wecom && $0.account == account })?.value else {
                return .skip(reason: "no_wecom_contact")
            }
            return .send(to: address)
        case "douyin":
            // A reply inside the window the customer opened by writing: no consent beyond that.
            guard let account else { return .skip(reason: "no_account") }
            guard let address = to ?? identities.first(where: { $0.kind == .douyin && $0.account == account })?.value else {
                return .skip(reason: "no_douyin_open_id")
            }
            return .send(to: address)
        case "sms":
            if let s = state("sms"), ["revoked", "opted_out"].contains(s) { return .skip(reason: "sms_opted_out") }
            guard let address = to ?? identities.first(where: { $0.kind == .phone })?.value else { return .skip(reason: "no_phone") }
            return .send(to: address)
        case "email":
            if let s = state("email") {
                // A bounce or a complaint stops everything; an unsubscribe stops marketing, not receipts.
                if ["bounced", "complained"].contains(s) { return .skip(reason: "email_\(s)") }
                if ["revoked", "unsubscribed"].contains(s) && !transactional { return .skip(reason: "email_unsubscribed") }
            }
            guard let address = to ?? identities.first(where: { $0.kind == .email })?.value else { return .skip(reason: "no_email") }
            return .send(to: address)
        default:
            return .skip(reason: "unknown_channel")
        }
    }
}

extension OutboundMessage {
    /// A `journey` field split into the journey's id and the step's (nil when it is not `<journey>:<step>`).
    public static func journeyStep(_ journey: String) -> (journey: String, step: String)? {
        guard let colon = journey.firstIndex(of: ":") else { return nil }
        return (String(journey[..<colon]), String(journey[journey.index(after: colon)...]))
    }
}
