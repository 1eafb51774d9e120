import GatewayCore
import RedisClient

/// Everything a sender reads before deciding on a message, in one function call (one round trip): the
/// message and its customer (by id, or by the raw address it was sent to; merges followed). The
/// address's own opt-out is read once the address is chosen (`CustomerStore.optOut`).
public struct SendContext: Sendable {
    public let message: [String: String]
    public let customer: Customer?
    /// The state of the message's campaign, if it belongs to one (`missing` when it is gone).
    public let campaignState: String?
    /// The campaign's own rate cap (messages per second), if it has one.
    public let campaignRate: Double?

    public init(message: [String: String], customer: Customer?, campaignState: String?, campaignRate: Double?) {
        self.message = message
        self.customer = customer
        self.campaignState = campaignState
        self.campaignRate = campaignRate
    }

    /// A campaign's stored `ratePerSecond`: a positive number, else no cap.
    public static func rate(_ stored: String?) -> Double? { stored.flatMap(Double.init).flatMap { $0 > 0 ? $0 : nil } }
}

extension CustomerStore {
    /// The send context of one message, following its address (a message sent to a raw `to`: the
    /// identity holding it, as Identity's storage forms name it) and merges to the customer.
    public func sendContext(messageId: String) async throws -> SendContext? {
        let message = try await redis.send("HGETALL", Keys.message(messageId)).dictionary
        guard !message.isEmpty else { return nil }
        var id = message["customerId"]
        if id == nil, let to = message["to"], let identity = Self.addressIdentity(channel: message["channel"], to: to, account: message["account"]) {
            id = try await redis.send("GET", Keys.identity(identity)).string
        }
        var customer: Customer?
        if let known = id {
            let live = try await resolve(known)
            let r = try await redis.pipelineChecked([["HGETALL", Keys.customer(live)], ["SMEMBERS", Keys.customerIdentities(live)]])
            let hash = r[0].dictionary
            if hash["createdAt"] != nil, hash["mergedInto"] == nil {
                customer = Customer(id: live, hash: hash, identities: r[1].strings.compactMap(Identity.init(storageForm:)), tags: [])
            }
        }
        var campaignState: String?, campaignRate: Double?
        if let campaign = message["campaign"] {
            let c = try await redis.send("HMGET", Keys.campaign(campaign), "state", "ratePerSecond").array ?? []
            campaignState = c.first?.string ?? "missing"
            campaignRate = SendContext.rate(c.count > 1 ? c[1].string : nil)
        }
        return SendContext(message: message, customer: customer, campaignState: campaignState, campaignRate: campaignRate)
    }

    /// The identity a raw address of a channel is stored as: a phone, an email, a follower's openid.
    static func addressIdentity(channel: String?, to: String, account: String?) -> Identity? {
        switch channel {
        case "sms": Identity(kind: .phone, value: to)
        case "email": Identity(kind: .email, value: to.lowercased())
        case "wechat": account.map { Identity(kind: .openid, account: $0, value: to) }
        default: nil
        }
    }

    /// The send contexts of a batch of messages in two pipelined reads (the messages, then their
    /// customers and campaigns), nil for a message that is gone. A message addressed by `to` alone, or
    /// whose customer was merged into another, is read with `sendContext(messageId:)` (which follows
    /// the address and the merges).
    public func sendContexts(messageIds: [String]) async throws -> [SendContext?] {
        guard !messageIds.isEmpty else { return [] }
        let messages = try await redis.pipelineChecked(messageIds.map { ["HGETALL", Keys.message($0)] }).map(\.dictionary)
        var reads = [[String]]()
        var at = [(customer: Int?, campaign: Int?)]()
        for hash in messages {
            var slot: (customer: Int?, campaign: Int?) = (nil, nil)
            if let customer = hash["customerId"] {
                slot.customer = reads.count
                reads += [["HGETALL", Keys.customer(customer)], ["SMEMBERS", Keys.customerIdentities(customer)]]
            }
            if let campaign = hash["campaign"] {
                slot.campaign = reads.count
                reads.append(["HMGET", Keys.campaign(campaign), "state", "ratePerSecond"])
            }
            at.append(slot)
        }
        let replies = reads.isEmpty ? [] : try await redis.pipelineChecked(reads)
        var out = [SendContext?]()
        out.reserveCapacity(messageIds.count)
        for (i, hash) in messages.enumerated() {
            guard !hash.isEmpty else {
                out.append(nil)
                continue
            }
            var customer: Customer?
            if let c = at[i].customer, let id = hash["customerId"] {
                let h = replies[c].dictionary
                if h["mergedInto"] != nil {
                    out.append(try await sendContext(messageId: messageIds[i]))
                    continue
                }
                if h["createdAt"] != nil { customer = Customer(id: id, hash: h, identities: replies[c + 1].strings.compactMap(Identity.init(storageForm:)), tags: []) }
            } else if hash["to"] != nil {
                out.append(try await sendContext(messageId: messageIds[i]))
                continue
            }
            var campaignState: String?, campaignRate: Double?
            if let c = at[i].campaign {
                let f = replies[c].array ?? []
                campaignState = f.first?.string ?? "missing"
                campaignRate = f.count > 1 ? SendContext.rate(f[1].string) : nil
            }
            out.append(SendContext(message: hash, customer: customer, campaignState: campaignState, campaignRate: campaignRate))
        }
        return out
    }

    /// The key of the opt-out recorded on an address (`optOut(channel:address:)` reads it).
    public func optOutKey(channel: String, address: String) -> String { suppression.key(channel: channel, address: address) }

    /// `state|ms` of an opt-out recorded on the address itself (an unsubscribe link, a STOP reply, a
    /// bounce), whoever holds it now.
    public func optOut(channel: String, address: String) async throws -> String? {
        try await redis.send("GET", suppression.key(channel: channel, address: address)).string
    }
}
