import GatewayCore
import RedisClient

/// Clicks on tracked links and opens of email pixels (`LinkTokens`): where a link goes, and
/// recording the interaction once (`engagement_record` in the Functions library).
public struct EngagementStore: Sendable {
    let redis: RedisPool
    let timelineCap: Int
    let streamMaxLen: Int
    let shards: IndexShards
    /// A tracked link works this long after its message was sent (messages are kept as long).
    public static let linkLifetimeMs: Int64 = 30 * 86_400_000
    /// A repeat of the same click (or open) within this many seconds counts once.
    public static let repeatWindowSeconds = 60

    public init(redis: RedisPool, config: GatewayConfig) {
        self.redis = redis
        timelineCap = config.customers.timelineCap
        streamMaxLen = config.streams.inboundMaxLen
        shards = IndexShards(redis: redis, attributes: config.customers.attributes)
    }

    /// What a token leads to: the message's recipient and campaign, and the link's original URL.
    public struct Target: Sendable, Equatable {
        public let messageId: String
        public let index: Int
        /// Nil for an open pixel.
        public let url: String?
        public let customer: String?
        public let campaign: String?
        public let variant: String?
        public let channel: String
        /// A journey's message: `<journey>:<step id>`.
        public var journey: String? = nil
    }

    /// The target of a genuine token; nil when the message is gone, was never sent, was sent longer
    /// ago than `linkLifetimeMs`, or has no such link.
    public func target(messageId: String, index: Int, nowMs: Int64) async throws -> Target? {
        let r = try await redis.send("HMGET", Keys.message(messageId), "links", "sentAt", "customerId", "campaign", "variant", "channel", "journey").array ?? []
        guard r.count == 7, let sentAt = r[1].string.flatMap({ Int64($0) }), nowMs - sentAt <= Self.linkLifetimeMs, let channel = r[5].string else {
            return nil
        }
        var url: String?
        if index != LinkTokens.openPixel {
            guard let text = r[0].string, case .array(let links)? = JSONValue.parse(Array(text.utf8)), index < links.count,
                case .string(let u) = links[index]
            else { return nil }
            url = u
        }
        return Target(messageId: messageId, index: index, url: url, customer: r[2].string, campaign: r[3].string, variant: r[4].string, channel: channel,
            journey: r[6].string)
    }

    public enum Recorded: String, Sendable {
        /// A repeat within the window: not counted.
        case repeated = "repeat"
        /// The message's first click (or open).
        case first
        /// Counted, not the first.
        case again
    }

    /// Counts a click (`url` set) or an open, and records the recipient's interaction.
    public func record(_ t: Target, nowMs: Int64) async throws -> Recorded {
        let kind = t.url == nil ? "open" : "click"
        var payload: [String: JSONValue] = ["message": .string(t.messageId), "channel": .string(t.channel)]
        if let url = t.url { payload["url"] = .string(url) }
        if let c = t.campaign { payload["campaign"] = .string(c) }
        if let v = t.variant { payload["variant"] = .string(v) }
        var keys = [Keys.message(t.messageId), Keys.engagementGuard(message: t.messageId, kind: kind, index: t.index)]
        var prefix = ""
        if let c = t.campaign {
            keys.append(Keys.campaignStats(c))
        } else if let j = t.journey.flatMap(OutboundMessage.journeyStep) {
            keys.append(Keys.journeyStats(j.journey))
            prefix = "s:\(j.step):"
            payload["journey"] = .string(j.journey)
        }
        if redis.isCluster { return try await recordInSteps(t, kind: kind, stats: keys.count > 2 ? keys[2] : "", prefix: prefix, payload: payload, nowMs: nowMs) }
        let r = try await redis.fcall(
            StoreFunctions.library, "engagement_record", keys: keys,
            args: [
                kind, String(nowMs), String(Self.repeatWindowSeconds), t.customer ?? "", t.variant ?? "", t.channel, String(timelineCap),
                String(streamMaxLen), JSONValue.object(payload).text, prefix,
            ])
        return Recorded(rawValue: r.string ?? "") ?? .again
    }

    /// A cluster's `engagement_record`: counted in the message's slot (`engagement_count_slot`), then
    /// the customer's timeline and last seen in its slot (`customer_interaction`, following merges),
    /// then the interaction appended to the inbound stream, and the counts flushed. A process that
    /// stops after the count leaves the interaction unrecorded (the repeat guard holds a retry back).
    func recordInSteps(_ t: Target, kind: String, stats: String, prefix: String, payload: [String: JSONValue], nowMs: Int64) async throws -> Recorded {
        let shard = MessageStore.shard(ofMessage: t.messageId)
        let r = try await redis.fcall(
            StoreFunctions.library, "engagement_count_slot",
            keys: [Keys.counterOutbox(shard), Keys.message(t.messageId), Keys.engagementGuard(message: t.messageId, kind: kind, index: t.index)],
            args: [kind, String(nowMs), String(Self.repeatWindowSeconds), t.variant ?? "", t.channel, stats, prefix])
        let recorded = Recorded(rawValue: r.string ?? "") ?? .again
        guard recorded != .repeated else { return recorded }
        if let customer = t.customer {
            let type = "message.\(kind)", data = JSONValue.object(payload).text
            let entry = #"{"at":\#(nowMs),"type":"\#(type)","data":\#(data)}"#
            let (id, reply) = try await shards.callFollowingMerges(redis, "customer_interaction", customer) { id in
                [id, String(nowMs), String(timelineCap), entry]
            }
            if reply.first?.int == 1 {
                _ = try await redis.send([
                    "XADD", redis.streams.inbound(customer: id), "MAXLEN", "~", String(streamMaxLen), "*", "type", type, "customer", id, "payload", data, "at",
                    String(nowMs), "source", "link",
                ])
            }
        }
        try await MessageStore(redis: redis).flushCounters([shard])
        return recorded
    }
}
