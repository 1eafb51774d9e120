import GatewayCore
import RedisClient

/// Everything a sender reads before deciding on a message, in one script (one round trip): the
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
    public func sendContext(messageId: String) async throws -> SendContext? {
        let r = try await redis.eval(Self.sendContextScript, keys: [Keys.message(messageId)], args: []).array ?? []
        guard r.count == 6 else { return nil }
        let id = r[1].string ?? ""
        let hash = r[2].dictionary
        let customer = id.isEmpty || hash["createdAt"] == nil
            ? nil : Customer(id: id, hash: hash, identities: r[3].strings.compactMap(Identity.init(storageForm:)), tags: [])
        let campaignState = r[4].string.flatMap { $0.isEmpty ? nil : $0 }
        let campaignRate = SendContext.rate(r[5].string)
        return SendContext(
            message: r[0].dictionary, customer: customer, campaignState: campaignState, campaignRate: campaignRate)
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

    // The address lookup mirrors Identity's storage forms (phone:<e164>, email:<lowercase>,
    // openid:<account>:<openid>) and Keys.campaign.
    static let sendContextScript = RedisScript(
        name: "send_context",
        source: LuaCustomerLibrary.source + "\n" + #"""
            local h = redis.call('HGETALL', KEYS[1])
            if #h == 0 then return {} end
            local f = {}
            for i = 1, #h, 2 do f[h[i]] = h[i + 1] end
            local ch, cid = f.channel, f.customerId
            if not cid and f.to then
              local ident = nil
              if ch == 'sms' then ident = 'phone:' .. f.to
              elseif ch == 'email' then ident = 'email:' .. string.lower(f.to)
              elseif ch == 'wechat' and f.account then ident = 'openid:' .. f.account .. ':' .. f.to end
              if ident then cid = redis.call('GET', 'idx:' .. ident) end
            end
            local cust, ids = {}, {}
            if cid then
              local live
              cid, live = resolveLive(cid)
              if live then
                cust = redis.call('HGETALL', ckey(cid))
                ids = redis.call('SMEMBERS', idskey(cid))
              end
            end
            local campaign, rate = '', ''
            if f.campaign then
              local c = redis.call('HMGET', 'camp:{' .. f.campaign .. '}', 'state', 'ratePerSecond')
              campaign, rate = c[1] or 'missing', c[2] or ''
            end
            return { h, cid or '', cust, ids, campaign, rate }
            """#)
}
