import Foundation
import GatewayCore
import GatewayCrypto
import RedisClient

/// Sending on a Redis Cluster (docs/cluster-key-model.md, "Sending"). A message is in its recipient's
/// slot (`MessageId`), so each change of a message, with its contact history, message index and
/// campaign exposure, is one call there (`Lua/outbound_steps.lua`). What lives in other slots is done
/// around it, each step safe to repeat after a crash:
/// - before the change: the idempotency claim, the campaign's state and opt-outs read, provider ids
///   indexed, retries scheduled, dead letters appended (once per mark);
/// - after it: stream entries acknowledged (a redelivered entry finds the message moved on), appends
///   once per mark, and the slot's counter outbox flushed into the campaign's and journey's stats
///   exactly once (`flushCounters`; the periodic `flushAllCounters` finishes a flush that stopped).
extension MessageStore {
    /// The shard (slot) a message is in.
    static func shard(ofMessage id: String) -> IndexShard { IndexShard(slot: HashSlot.of(Keys.message(id))) }

    /// `key` when it is in the message's slot, else nil (a message made before its recipient was known).
    static func inSlot(of id: String, _ key: String?) -> String? {
        guard let key, HashSlot.of(key) == HashSlot.of(Keys.message(id)) else { return nil }
        return key
    }

    /// The message ids' indexes grouped by slot, in first-seen order.
    static func bySlot(_ ids: [String]) -> [(shard: IndexShard, indexes: [Int])] {
        var order = [IndexShard](), groups = [IndexShard: [Int]]()
        for (i, id) in ids.enumerated() {
            let s = shard(ofMessage: id)
            if groups[s] == nil { order.append(s) }
            groups[s, default: []].append(i)
        }
        return order.map { ($0, groups[$0]!) }
    }

    func acceptInSteps(_ m: OutboundMessage) async throws -> Accepted {
        let ttl = String(Self.idempotencyTTLSeconds)
        let first = try await redis.send(["SET", Keys.idempotency(m.idempotencyKey), m.id, "NX", "GET", "EX", ttl]).string
        // A repeat stores and queues the first id too: the first request may have stopped after its claim.
        let id = first ?? m.id
        let fields = m.fields.map { $0.0 == "id" ? ($0.0, id) : $0 }
        let index = Self.inSlot(of: id, m.customerId.map(Keys.customerMessages))
        _ = try await redis.fcall(
            StoreFunctions.library, "message_store", keys: [Keys.message(id)] + (index.map { [$0] } ?? []),
            args: [id, String(m.createdAt), String(Self.customerIndexTTLMs)] + fields.flatMap { [$0.0, $0.1] })
        try await queueOnce(id, on: redis.streams.outbound(channel: m.channel, lane: m.lane, message: id), op: "accept:\(id)")
        return first == nil ? .created(id) : .duplicate(id)
    }

    /// Appends an entry once per operation (`stream_append_once`).
    @discardableResult
    func appendOnce(_ stream: String, op: String, ttl: String, maxLength: String = "", fields: [String]) async throws -> Bool {
        try await redis.fcall(
            StoreFunctions.library, "stream_append_once", keys: [stream, Keys.streamAppended(stream, op: op)], args: [ttl, maxLength] + fields
        ).int == 1
    }

    /// A message appended to its queue `stream` once per operation `op` (kept as long as idempotency keys).
    @discardableResult
    func queueOnce(_ id: String, on stream: String, op: String) async throws -> Bool {
        try await appendOnce(stream, op: op, ttl: String(Self.idempotencyTTLSeconds), fields: ["id", id])
    }

    /// Acknowledges and deletes stream entries, one XACK and one XDEL per stream.
    func acknowledge(_ entries: [Entry]) async throws {
        var order = [String](), ids = [String: [String]]()
        for e in entries {
            if ids[e.stream] == nil { order.append(e.stream) }
            ids[e.stream, default: []].append(e.id)
        }
        guard !order.isEmpty else { return }
        _ = try await redis.pipelineChecked(order.flatMap { s in [["XACK", s, Keys.outboundGroup] + ids[s]!, ["XDEL", s] + ids[s]!] })
    }

    func materializeInSteps(_ made: [(entry: Entry, messageId: String, made: Made)]) async throws -> [Materialized] {
        let refs = made.filter { $0.entry.reference != nil }
        var replies = [Int?](repeating: nil, count: refs.count)
        var present = [Int: Bool]()
        var toAck = [Entry]()
        var touched = Set<IndexShard>()
        for round in 0..<2 {
            let pending = refs.indices.filter { replies[$0] == nil && (round == 0 || present[$0] != nil) }
            guard !pending.isEmpty else { break }
            let groups = Self.bySlot(pending.map { refs[$0].messageId }).map { g in (g.shard, g.indexes.map { pending[$0] }) }
            let calls = groups.map { shard, indexes in
                var keys = [Keys.counterOutbox(shard)], args = [String(Self.customerIndexTTLMs)]
                for i in indexes {
                    let (entry, id, what) = refs[i]
                    let ref = entry.reference!
                    keys += [Keys.message(id), Keys.customerMessages(ref.customer), Keys.customer(ref.customer)]
                    let known = present[i].map { $0 ? "1" : "0" } ?? ""
                    switch what {
                    case .message(let m):
                        let fields = m.fields
                        args += ["q", entry.id, id, ref.variant, m.channel, Keys.campaignStats(ref.campaign), known, String(fields.count * 2)]
                        for (k, v) in fields { args += [k, v] }
                    case .refused(let channel, let reason):
                        args += ["s", entry.id, id, ref.variant, channel, Keys.campaignStats(ref.campaign), known, reason]
                    }
                }
                return (keys: keys, args: args)
            }
            let results = try await redis.fcallAll(StoreFunctions.library, "campaign_message_materialize_slot", calls: calls)
            var ask = [Int]()
            for ((shard, indexes), reply) in zip(groups, results) {
                touched.insert(shard)
                for (i, code) in zip(indexes, (reply.array ?? []).map { $0.int ?? 0 }) {
                    if code == 3 { ask.append(i); continue }
                    replies[i] = code
                    if code == 0 { toAck.append(refs[i].entry) }
                }
            }
            // A reference whose customer is gone: settled by the erasure's purge when its entry left the stream.
            let ranges = try await redis.pipelineChecked(ask.map { ["XRANGE", refs[$0].entry.stream, refs[$0].entry.id, refs[$0].entry.id] })
            for (i, r) in zip(ask, ranges) {
                present[i] = !(r.array ?? []).isEmpty
                if present[i] == false { replies[i] = 0 }
            }
        }
        try await acknowledge(toAck)
        try await flushCounters(touched)
        return replies.map { $0 == 2 ? .created : $0 == 1 ? .existing : .settled }
    }

    func claimInSteps(_ requests: [ClaimRequest], owner: String, now: Int64, caps: [String]) async throws -> [Claim] {
        let campaigns = Array(Set(requests.compactMap(\.campaign)))
        let states = try await redis.pipelineChecked(campaigns.map { ["HGET", Keys.campaign($0), "state"] })
        var stateOf = [String: String]()
        for (c, s) in zip(campaigns, states) { stateOf[c] = s.string ?? "missing" }
        let optOutKeys = requests.compactMap(\.optOutKey)
        let optOuts = try await redis.pipelineChecked(optOutKeys.map { ["GET", $0] })
        var optOutOf = [String: String]()
        for (k, v) in zip(optOutKeys, optOuts) { optOutOf[k] = v.string ?? "" }
        let groups = Self.bySlot(requests.map(\.id))
        let calls = try groups.map { _, indexes in
            var keys = [String](), args = [String(now), owner] + caps
            for i in indexes {
                let r = requests[i]
                let history = r.contactSubject.map(Keys.contactHistory)
                guard history == nil || Self.inSlot(of: r.id, history) != nil else {
                    throw RedisError.reply(command: "FCALL message_claim_slot", message: "message \(r.id) is not in its recipient's slot")
                }
                keys += [Keys.message(r.id), history ?? Keys.message(r.id)]
                args += [
                    r.id, history == nil ? "0" : "1", r.campaign.flatMap { stateOf[$0] } ?? "", r.optOutKey.flatMap { optOutOf[$0] } ?? "",
                    r.entry.flatMap { Keys.outboundChannel(stream: $0.stream) } ?? "",
                ]
            }
            return (keys: keys, args: args)
        }
        var claims = [Claim?](repeating: nil, count: requests.count)
        for ((_, indexes), reply) in zip(groups, try await redis.fcallAll(StoreFunctions.library, "message_claim_slot", calls: calls)) {
            let r = reply.array ?? []
            for (n, i) in indexes.enumerated() {
                let code = r.count > 2 * n ? r[2 * n].int : nil, value = r.count > 2 * n + 1 ? r[2 * n + 1].string ?? "" : ""
                if code == 7 {
                    try await queueFallenBack(requests[i].id, channel: value, entry: requests[i].entry)
                    claims[i] = .done
                } else {
                    claims[i] = Self.claim(code: code, value: value, now: now)
                }
            }
        }
        // A paused campaign's messages parked (its set, then the entry acknowledged): resume queues them again.
        let parked = requests.indices.filter { claims[$0] == .parked }
        _ = try await redis.pipelineChecked(parked.map { ["SADD", Keys.campaignParked(requests[$0].campaign ?? ""), requests[$0].id] })
        try await acknowledge(parked.compactMap { requests[$0].entry })
        return claims.map { $0 ?? .done }
    }

    /// A message that fell back to `channel`, queued there once (the fallback's own append, should it
    /// have not happened), and the entry it was found on acknowledged.
    func queueFallenBack(_ id: String, channel: String, entry: Entry?) async throws {
        // Its stored channel is `channel` now: the queue is that channel's, for its lane.
        if let stream = try await queues([id])[0].stream { try await queueOnce(id, on: stream, op: "fallback:\(id):\(channel)") }
        try await acknowledge(entry.map { [$0] } ?? [])
    }

    func fallBackInSteps(_ m: OutboundMessage, to next: OutboundMessage, args: [String], entry: Entry?, releaseCap: String?) async throws -> Bool {
        let shard = Self.shard(ofMessage: m.id)
        let history = Self.inSlot(of: m.id, releaseCap.map(Keys.contactHistory))
        let moved = try await redis.fcall(
            StoreFunctions.library, "message_fall_back_slot", keys: [Keys.counterOutbox(shard), Keys.message(m.id), history ?? Keys.message(m.id)],
            args: [Keys.campaignStats(m.campaign ?? ""), history == nil ? "0" : "1"] + args
        ).int == 1
        if moved {
            try await queueFallenBack(m.id, channel: next.channel, entry: entry)
        } else {
            try await acknowledge(entry.map { [$0] } ?? [])
        }
        try await flushCounters([shard])
        return moved
    }

    func replayInSteps(_ letter: DeadLetter, message m: OutboundMessage, now: Int64) async throws -> Bool {
        guard !(try await redis.send(["XRANGE", Keys.deadLetters, letter.entryId, letter.entryId]).array ?? []).isEmpty else { return false }
        let shard = Self.shard(ofMessage: m.id)
        _ = try await redis.fcall(
            StoreFunctions.library, "message_replay_slot", keys: [Keys.counterOutbox(shard), Keys.message(m.id)], args: [String(now)] + Self.counterKeys(m))
        try await queueOnce(m.id, on: redis.streams.outbound(channel: m.channel, lane: m.lane, message: m.id), op: "replay:\(letter.entryId)")
        let removed = try await redis.send("XDEL", Keys.deadLetters, letter.entryId).int == 1
        try await flushCounters([shard])
        return removed
    }

    func holdInSteps(_ m: OutboundMessage, campaign: String, entry: Entry?) async throws -> Claim {
        let state = try await redis.send("HGET", Keys.campaign(campaign), "state").string ?? "missing"
        if state == "paused" {
            _ = try await redis.send("SADD", Keys.campaignParked(campaign), m.id)
            try await acknowledge(entry.map { [$0] } ?? [])
            return .parked
        }
        return state == "running" || state == "completed" ? .done : .campaignStopped(state: state)
    }

    func completeInSteps(_ sent: [(message: OutboundMessage, providerId: String?, entry: Entry?)], now: Int64) async throws {
        let keep = String(Self.retentionMs)
        _ = try await redis.pipelineChecked(
            sent.compactMap { s in s.providerId.map { ["SET", Keys.providerMessage(adapter: s.message.adapter, providerId: $0), s.message.id, "PX", keep] } })
        let groups = Self.bySlot(sent.map(\.message.id))
        let calls = groups.map { shard, indexes in
            var keys = [Keys.counterOutbox(shard)], args = [String(now), keep]
            for i in indexes {
                let m = sent[i].message
                let exposures = m.campaign != nil ? Self.inSlot(of: m.id, m.customerId.map(Keys.customerCampaigns)) : nil
                keys += [Keys.message(m.id), exposures ?? Keys.message(m.id)]
                args += [sent[i].providerId ?? "", m.id, exposures == nil ? "0" : "1"] + Self.counterKeys(m)
            }
            return (keys: keys, args: args)
        }
        _ = try await redis.fcallAll(StoreFunctions.library, "message_complete_slot", calls: calls)
        try await acknowledge(sent.compactMap(\.entry))
        try await flushCounters(Set(groups.map(\.shard)))
    }

    func rescheduleInSteps(
        _ m: OutboundMessage, at dueAt: Int64, lastError: String?, entry: Entry?, now: Int64, deferred: Bool, doubtSince: Int64?
    ) async throws {
        _ = try await redis.send("ZADD", Keys.outboundRetries, String(dueAt), m.id)
        let shard = Self.shard(ofMessage: m.id)
        _ = try await redis.fcall(
            StoreFunctions.library, "message_reschedule_slot", keys: [Keys.counterOutbox(shard), Keys.message(m.id)],
            args: [String(now), String(dueAt), lastError ?? "", deferred ? "1" : "0", doubtSince.map(String.init) ?? ""] + Self.counterKeys(m))
        try await acknowledge(entry.map { [$0] } ?? [])
        try await flushCounters([shard])
    }

    func finishInSteps(
        _ m: OutboundMessage, state: OutboundMessage.State, reason: String, lastError: String?, answer: String?, entry: Entry?, now: Int64,
        releaseCap: String?
    ) async throws {
        if state == .failed {
            try await appendOnce(
                Keys.deadLetters, op: "dead:\(m.id):\(m.attempts)", ttl: String(Self.idempotencyTTLSeconds), maxLength: "100000",
                fields: [
                    "id", m.id, "channel", m.channel, "adapter", m.adapter, "reason", reason, "error", lastError ?? "", "answer", answer ?? "",
                    "at", String(now),
                ])
        }
        let shard = Self.shard(ofMessage: m.id)
        let history = Self.inSlot(of: m.id, releaseCap.map(Keys.contactHistory))
        _ = try await redis.fcall(
            StoreFunctions.library, "message_finish_slot", keys: [Keys.counterOutbox(shard), Keys.message(m.id), history ?? Keys.message(m.id)],
            args: [String(now), state.rawValue, reason, lastError ?? "", m.id, m.channel, String(Self.retentionMs), history == nil ? "0" : "1"]
                + Self.counterKeys(m))
        try await acknowledge(entry.map { [$0] } ?? [])
        try await flushCounters([shard])
    }

    /// Due retries back on their streams: each message still retrying appended once per attempt time,
    /// then the schedule entries removed (a process that stops between the two appends nothing twice).
    func requeueInSteps(now: Int64, limit: Int) async throws -> Int {
        let due = try await redis.send("ZRANGEBYSCORE", Keys.outboundRetries, "-inf", String(now), "WITHSCORES", "LIMIT", "0", String(limit)).strings
        guard !due.isEmpty else { return 0 }
        let ids = stride(from: 0, to: due.count - 1, by: 2).map { due[$0] }
        var queued = 0
        for (id, q) in zip(ids, try await queues(ids, with: ["state", "nextAttemptAt"])) {
            guard let stream = q.stream, q.fields[0] == "retrying" else { continue }
            if try await queueOnce(id, on: stream, op: "retry:\(id):\(q.fields[1] ?? "")") { queued += 1 }
        }
        _ = try await redis.fcall(StoreFunctions.library, "zset_remove_unchanged", keys: [Keys.outboundRetries], args: due)
        return queued
    }

    // MARK: counter outboxes

    /// Moves the counts waiting in these slots' outboxes into their counter keys, exactly once: each
    /// outbox is taken under the slot's next take number (`counters_take`; a take that stopped is
    /// answered again), each counter key gets the take's counts once (`counters_apply`: the key's
    /// applied hash keeps the last take per slot, so its size is bounded by the slots, not the
    /// messages), then the take is removed (`counters_done`).
    func flushCounters(_ shards: Set<IndexShard>) async throws {
        guard !shards.isEmpty else { return }
        let order = Array(shards)
        let takes = try await redis.fcallAll(
            StoreFunctions.library, "counters_take",
            calls: order.map { s in (keys: [Keys.counterOutbox(s), Keys.counterOutboxTaking(s), Keys.counterOutboxSequence(s)], args: []) })
        // Per counter key, every take's part (source slot, take, its field/amount pairs): one call per key.
        var parts = [String: (expire: String, groups: [String])](), counterKeys = [String](), dones = [(keys: [String], args: [String])]()
        for (shard, reply) in zip(order, takes) {
            let fields = (reply.array ?? []).map { $0.string ?? "" }
            guard let take = fields.first else { continue }
            var byKey = [String: (expire: String, pairs: [String])](), keys = [String]()
            for i in stride(from: 1, to: fields.count - 1, by: 2) {
                let f = fields[i].split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
                guard f.count == 3, fields[i + 1] != "0" else { continue }
                if byKey[f[0]] == nil { keys.append(f[0]) }
                byKey[f[0], default: (f[2], [])].pairs += [f[1], fields[i + 1]]
            }
            for k in keys {
                let part = byKey[k]!
                if parts[k] == nil { counterKeys.append(k) }
                parts[k, default: (part.expire, [])].groups += [shard.tag ?? "single", take, String(part.pairs.count / 2)] + part.pairs
            }
            dones.append((keys: [Keys.counterOutboxTaking(shard)], args: [take]))
        }
        _ = try await redis.fcallAll(
            StoreFunctions.library, "counters_apply", calls: counterKeys.map { k in (keys: [k, Keys.counterApplied(k)], args: [parts[k]!.expire] + parts[k]!.groups) })
        _ = try await redis.fcallAll(StoreFunctions.library, "counters_done", calls: dones)
    }

    /// Flushes every slot's outbox that holds counts (a flush a stopped process left). Once a minute
    /// on a cluster (OutboundEngine's maintenance); nothing on a single Redis.
    public func flushAllCounters() async throws {
        guard redis.isCluster else { return }
        let shards = IndexShards(redis: redis, attributes: nil)
        let counts = try await shards.sendEach(redis) { ["EXISTS", Keys.counterOutbox($0), Keys.counterOutboxTaking($0)] }
        try await flushCounters(Set(zip(shards.layout.shards, counts).filter { ($0.1.int ?? 0) > 0 }.map(\.0)))
    }
}
