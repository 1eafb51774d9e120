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
            let (kind, value): (String, String)
            switch lookup {
            case .messageId(let id): (kind, value) = ("id", id)
            case .providerId(let adapter, let id): (kind, value) = ("pid", Keys.providerMessage(adapter: adapter, providerId: id))
            }
            let outcome: (String, String)
            switch r.outcome {
            case .delivered: outcome = ("delivered", "")
            case .failed(let reason): outcome = ("failed", reason)
            case .none: outcome = ("none", "")
            }
            let engagement = r.engagement.map { [$0.kind, $0.url ?? ""] } ?? ["", ""]
            let reply = try await redis.eval(
                Self.script, keys: [], args: [kind, value, outcome.0, outcome.1, String(nowMs)] + engagement + [String(customers.streamMaxLen)]
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

    // The message key is derived from the id inside the script (one Redis; see Keys.message).
    static let script = RedisScript(
        name: "receipt_apply",
        source: CampaignStatsLua.source + "\n" + #"""
            local id = ARGV[2]
            if ARGV[1] == 'pid' then
              id = redis.call('GET', ARGV[2])
              if not id then return { 0 } end
            end
            local key = 'msg:{' .. id .. '}'
            local st = redis.call('HGET', key, 'state')
            if not st then return { 0 } end
            local moved = ''
            if ARGV[3] == 'delivered' and st == 'sent' then
              redis.call('HSET', key, 'state', 'delivered', 'deliveredAt', ARGV[5], 'updatedAt', ARGV[5])
              bump(key, 'delivered', 1)
              moved = 'delivered'
            elseif ARGV[3] == 'failed' and (st == 'sent' or st == 'delivered') then
              redis.call('HSET', key, 'state', 'failed', 'reason', ARGV[4], 'updatedAt', ARGV[5])
              bump(key, 'bounced', 1)
              moved = 'failed'
            end
            if ARGV[6] ~= '' then
              local h = redis.call('HMGET', key, 'customerId', 'channel', 'campaign')
              if h[1] then
                local payload = { message = id, channel = h[2] }
                if h[3] then payload.campaign = h[3] end
                if ARGV[7] ~= '' then payload.url = ARGV[7] end
                redis.call('XADD', 'stream:inbound', 'MAXLEN', '~', ARGV[8], '*', 'type', (h[2] or 'message') .. '.' .. ARGV[6],
                  'customer', h[1], 'payload', cjson.encode(payload), 'at', ARGV[5], 'source', 'receipt')
              end
            end
            return { 1, id, redis.call('HGET', key, 'channel') or '', moved }
            """#)
}
