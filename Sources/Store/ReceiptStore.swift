import GatewayCore
import RedisClient

/// Applies delivery receipts to messages: sent -> delivered, sent/delivered -> failed (a later
/// bounce), never backwards; opt-outs (bounce, complaint, unsubscribe, STOP) go to consent.
public struct ReceiptStore: Sendable {
    public let redis: RedisPool
    let customers: CustomerStore
    /// Counts deliveries and bounces for the dashboard.
    let activity: ActivityStats?

    public init(redis: RedisPool, customers: CustomerStore, activity: ActivityStats? = nil) {
        self.redis = redis
        self.customers = customers
        self.activity = activity
    }

    /// Returns the message id the receipt was matched to, if any.
    @discardableResult
    public func apply(_ r: DeliveryReceipt, nowMs: Int64) async throws -> String? {
        var matched: String?
        if let lookup = r.lookup {
            let id: String?
            switch lookup {
            case .messageId(let messageId): id = messageId
            case .providerId(let adapter, let pid): id = try await redis.send("GET", Keys.providerMessage(adapter: adapter, providerId: pid)).string
            }
            guard let id else { return nil }
            let outcome: (String, String)
            switch r.outcome {
            case .delivered: outcome = ("delivered", "")
            case .failed(let reason): outcome = ("failed", reason)
            case .none: outcome = ("none", "")
            }
            let engagement = r.engagement.map { [$0.kind, $0.url ?? ""] } ?? ["", ""]
            // The counters it may move are named by the message's campaign and journey, which never change.
            let owner = try await redis.send("HMGET", Keys.message(id), "campaign", "journey").array ?? []
            let campaign = owner.first?.string, journey = owner.count > 1 ? owner[1].string : nil
            if redis.isCluster {
                matched = try await applyInSteps(id, outcome: outcome, engagement: r.engagement, counterKeys: MessageStore.counterKeys(campaign: campaign, journey: journey), nowMs: nowMs)
                if let o = r.optOut { try await customers.recordOptOut(channel: o.channel, address: o.address, state: o.state, nowMs: nowMs) }
                return matched
            }
            let keys = [Keys.message(id)] + MessageStore.counterKeys(campaign: campaign, journey: journey) + [Keys.inboundStream]
            let reply = try await redis.fcall(
                StoreFunctions.library, "receipt_apply", keys: keys,
                args: [outcome.0, outcome.1, String(nowMs)] + engagement + [String(customers.streamMaxLen), id]
            ).array ?? []
            if reply.first?.int == 1 {
                matched = reply.count > 1 ? reply[1].string : nil
                if reply.count > 3, let channel = reply[2].string, let moved = reply[3].string, !moved.isEmpty {
                    activity?.outbound(channel: channel, result: moved, atMs: nowMs)
                }
            }
        }
        if let o = r.optOut { try await customers.recordOptOut(channel: o.channel, address: o.address, state: o.state, nowMs: nowMs) }
        return matched
    }

    /// A cluster's `receipt_apply`: the message's change in its slot (`receipt_apply_slot`), then an
    /// engagement appended to the inbound stream and the counts flushed.
    private func applyInSteps(
        _ id: String, outcome: (String, String), engagement: DeliveryReceipt.Engagement?, counterKeys: [String], nowMs: Int64
    ) async throws -> String? {
        let shard = MessageStore.shard(ofMessage: id)
        let reply = try await redis.fcall(
            StoreFunctions.library, "receipt_apply_slot", keys: [Keys.counterOutbox(shard), Keys.message(id)],
            args: [outcome.0, outcome.1, String(nowMs)] + counterKeys
        ).array ?? []
        guard reply.first?.int == 1, reply.count >= 5 else { return nil }
        let channel = reply[1].string ?? "", moved = reply[2].string ?? "", customer = reply[3].string ?? "", campaign = reply[4].string ?? ""
        if !moved.isEmpty { activity?.outbound(channel: channel, result: moved, atMs: nowMs) }
        if let e = engagement, !customer.isEmpty {
            var payload: [String: JSONValue] = ["message": .string(id), "channel": .string(channel)]
            if !campaign.isEmpty { payload["campaign"] = .string(campaign) }
            if let url = e.url, !url.isEmpty { payload["url"] = .string(url) }
            _ = try await redis.send([
                "XADD", redis.streams.inbound(customer: customer), "MAXLEN", "~", String(customers.streamMaxLen), "*", "type",
                "\(channel.isEmpty ? "message" : channel).\(e.kind)",
                "customer", customer, "payload", JSONValue.object(payload).text, "at", String(nowMs), "source", "receipt",
            ])
        }
        try await MessageStore(redis: redis).flushCounters([shard])
        return id
    }
}
