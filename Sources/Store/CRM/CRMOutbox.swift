import GatewayCore
import RedisClient

/// The queue of one CRM adapter, in Redis, shared by every gateway process:
/// - `feed` moves changes from `stream:crm` (its consumer group) into a coalescing set: a customer
///   changed ten times while waiting is synced once, with its latest state;
/// - `take` forms a batch (full, or the oldest change has waited `maxWait`), leases its customers (a
///   customer is in one batch at a time, so an older snapshot can never land after a newer one) and
///   returns each customer's current snapshot;
/// - `finish` records the CRM's answer per customer: synced (its record id stored back as a `crm`
///   identity), retry after a backoff, or dead-lettered.
public struct CRMOutbox: Sendable {
    let redis: RedisPool
    public let adapter: String

    public init(redis: RedisPool, adapter: String) {
        self.redis = redis
        self.adapter = adapter
    }

    /// One customer as the CRM gets it.
    public struct Snapshot: Sendable, Equatable {
        public let customer: String
        /// Rises with every snapshot of this customer for this adapter.
        public let seq: Int64
        /// `{id, identities, tags, fields, recent}` (see the take script).
        public let document: JSONValue
    }

    public enum Take: Sendable, Equatable {
        case batch(token: String, [Snapshot])
        /// Nothing due; look again after this long.
        case wait(ms: Int64)
    }

    public enum Result: Sendable, Equatable {
        case synced(recordId: String?)
        /// The batch failed as a whole (5xx, timeout, expired credentials): again after a backoff that
        /// doubles per attempt; dead-lettered after `maxAttempts`.
        case retry(reason: String)
        /// Not sent for a reason that is not the record's (the CRM throttled): queued again at once,
        /// no attempt spent (the paused budget holds it back).
        case hold(reason: String)
        /// The CRM refused this record; retrying will not help.
        case failed(code: String, message: String)
    }

    // MARK: feeding

    /// Reads up to `count` new changes from `stream:crm` into the coalescing set; returns how many.
    public func feed(consumer: String, count: Int = 1000, maxWaitMs: Int64) async throws -> Int {
        let group = Keys.crmGroup(adapter: adapter)
        var entries = try await redis.send(["XREADGROUP", "GROUP", group, consumer, "COUNT", String(count), "STREAMS", Keys.crmStream, ">"])
            .array?.first?.array?.last?.array ?? []
        if entries.isEmpty {
            // A process that read entries and stopped before queueing them: take them over.
            let claimed = try await redis.send(["XAUTOCLAIM", Keys.crmStream, group, consumer, "30000", "0-0", "COUNT", String(count)])
            if let parts = claimed.array, parts.count >= 2 { entries = parts[1].array ?? [] }
        }
        guard !entries.isEmpty else { return 0 }
        var args = [adapter, String(maxWaitMs)]
        for e in entries {
            guard let parts = e.array, parts.count == 2, let id = parts[0].string else { continue }
            args += [id, parts[1].dictionary["customer"] ?? ""]
        }
        _ = try await redis.eval(Self.feedScript, keys: [], args: args)
        return entries.count
    }

    /// Creates the adapter's consumer group; from the start of the stream, so changes made before the
    /// adapter was enabled are synced too.
    public func prepare() async throws {
        _ = try? await redis.send("XGROUP", "CREATE", Keys.crmStream, Keys.crmGroup(adapter: adapter), "0", "MKSTREAM")
    }

    /// Queues customers for a sync, 1,000 per script call (a resync of many never holds Redis for long):
    /// a manual resync, a replay of dead letters.
    public func enqueue(_ customers: [String]) async throws {
        for start in stride(from: 0, to: customers.count, by: 1000) {
            _ = try await redis.eval(Self.enqueueScript, keys: [], args: [adapter] + customers[start..<min(start + 1000, customers.count)])
        }
    }

    /// Queues every customer the adapter dead-lettered again, then deletes those dead letters (a
    /// crash in between queues some twice, which a sync absorbs). Returns how many customers.
    public func replayDeadLetters() async throws -> Int {
        var ids = [String]()
        var customers = Set<String>()
        var cursor = "-"
        while true {
            let page = try await redis.send(["XRANGE", Keys.crmDeadLetters, cursor, "+", "COUNT", "1000"]).array ?? []
            for e in page {
                guard let parts = e.array, parts.count == 2, let id = parts[0].string else { continue }
                let f = parts[1].dictionary
                if f["adapter"] == adapter, let c = f["customer"] {
                    customers.insert(c)
                    ids.append(id)
                }
                cursor = "(" + id
            }
            if page.count < 1000 { break }
        }
        try await enqueue(customers.sorted())
        for chunk in stride(from: 0, to: ids.count, by: 1000) {
            _ = try await redis.send(["XDEL", Keys.crmDeadLetters] + ids[chunk..<min(chunk + 1000, ids.count)])
        }
        return customers.count
    }

    static let feedScript = RedisScript(
        name: "crm_feed",
        source: #"""
            local a = ARGV[1]
            local t = redis.call('TIME')
            local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
            local due = now + tonumber(ARGV[2])
            for i = 3, #ARGV, 2 do
              if ARGV[i + 1] ~= '' then redis.call('ZADD', 'crm:{' .. a .. '}:dirty', 'NX', due, ARGV[i + 1]) end
              redis.call('XACK', 'stream:crm', 'crm:' .. a, ARGV[i])
            end
            return 1
            """#)

    static let enqueueScript = RedisScript(
        name: "crm_enqueue",
        source: #"""
            local t = redis.call('TIME')
            local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
            for i = 2, #ARGV do
              redis.call('ZREM', 'crm:{' .. ARGV[1] .. '}:retry', ARGV[i])
              redis.call('ZADD', 'crm:{' .. ARGV[1] .. '}:dirty', 'NX', now, ARGV[i])
            end
            return 1
            """#)

    // MARK: batches

    /// A batch of up to `size` customers when one is due, leased for `leaseMs` under `token`.
    public func take(size: Int, leaseMs: Int64, recent: Int, token: String) async throws -> Take {
        let r = try await redis.eval(Self.takeScript, keys: [], args: [adapter, String(size), String(leaseMs), String(recent), token]).array ?? []
        guard r.first?.string == "batch" else { return .wait(ms: Int64(r.count > 1 ? r[1].int ?? 100 : 100)) }
        var snapshots = [Snapshot]()
        var i = 1
        while i + 2 < r.count {
            if let c = r[i].string, let seq = r[i + 1].int, let doc = JSONValue.parse(Array((r[i + 2].string ?? "").utf8)) {
                snapshots.append(Snapshot(customer: c, seq: Int64(seq), document: doc))
            }
            i += 3
        }
        return snapshots.isEmpty ? .wait(ms: 50) : .batch(token: token, snapshots)
    }

    /// Moves due retries and expired leases back, then leases the batch and snapshots each customer:
    /// identities, tags, every hash field and the `recent` newest timeline entries.
    static let takeScript = RedisScript(
        name: "crm_take",
        source: LuaCustomerLibrary.source + "\n" + #"""
            local a, size, lease, recent, token = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
            local dirty, inflight, retry = 'crm:{' .. a .. '}:dirty', 'crm:{' .. a .. '}:inflight', 'crm:{' .. a .. '}:retry'
            local t = redis.call('TIME')
            local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
            for _, c in ipairs(redis.call('ZRANGEBYSCORE', retry, '-inf', now, 'LIMIT', 0, 1000)) do
              redis.call('ZREM', retry, c)
              redis.call('ZADD', dirty, 'NX', now, c)
            end
            for _, c in ipairs(redis.call('ZRANGEBYSCORE', inflight, '-inf', now, 'LIMIT', 0, 1000)) do
              redis.call('ZREM', inflight, c)
              redis.call('HDEL', 'crm:{' .. a .. '}:c:' .. c, 'lease')
              redis.call('ZADD', dirty, 'NX', now, c)
            end
            local first = redis.call('ZRANGE', dirty, 0, 0, 'WITHSCORES')
            if #first == 0 then return { 'wait', 200 } end
            local halfLife = scoreHalfLives()
            if redis.call('ZCARD', dirty) < size and tonumber(first[2]) > now then
              return { 'wait', math.min(tonumber(first[2]) - now, 200) }
            end
            local out = { 'batch' }
            local n, offset = 0, 0
            while n < size do
              local page = redis.call('ZRANGE', dirty, offset, offset + size * 2 - 1)
              if #page == 0 then break end
              offset = offset + #page
              for _, c in ipairs(page) do
                if n >= size then break end
                -- A customer whose earlier batch is still on the wire waits for it (ordering).
                if not redis.call('ZSCORE', inflight, c) then
                  redis.call('ZREM', dirty, c)
                  offset = offset - 1
                  local id, live = resolveLive(c)
                  if id ~= c and live then
                    redis.call('ZADD', dirty, 'NX', now, id)  -- merged: the survivor is synced instead
                  elseif live then
                    local state = 'crm:{' .. a .. '}:c:' .. id
                    local seq = redis.call('HINCRBY', state, 'seq', 1)
                    redis.call('HSET', state, 'lease', token)
                    redis.call('ZADD', inflight, now + lease, id)
                    local h = redis.call('HGETALL', ckey(id))
                    local fields = {}
                    for k = 1, #h, 2 do fields[h[k]] = h[k + 1] end
                    if fields.score then
                      -- The score as it is now, decayed since it last changed.
                      fields.score = string.format('%.4f', decayedScore(tonumber(fields.score), tonumber(fields.scoreAt or now), now, halfLife))
                    end
                    local items = {}
                    if recent > 0 then
                      for _, e in ipairs(redis.call('LRANGE', tlkey(id), 0, recent - 1)) do
                        local ok, d = pcall(cjson.decode, e)
                        if ok then items[#items + 1] = d end
                      end
                    end
                    local doc = { id = id, identities = redis.call('SMEMBERS', idskey(id)), tags = redis.call('SMEMBERS', tagskey(id)),
                      fields = fields, recent = items }
                    out[#out + 1] = id
                    out[#out + 1] = seq
                    out[#out + 1] = cjson.encode(doc)
                    n = n + 1
                  end
                end
              end
            end
            if n == 0 then return { 'wait', 100 } end
            return out
            """#)

    // MARK: answers

    /// How often a customer's sync is retried, and the backoff between tries (the shared `RetryPolicy`).
    public struct RetryPolicy: Sendable {
        public var maxAttempts: Int
        public var backoff: GatewayCore.RetryPolicy
        public init(maxAttempts: Int, baseMs: Int64, capMs: Int64) {
            self.maxAttempts = maxAttempts
            backoff = GatewayCore.RetryPolicy(baseMs: baseMs, capMs: capMs)
        }

        /// The wait after each failed try, 1 to `maxAttempts`, for one customer (its own jitter).
        func delays() -> String {
            let random = Double.random(in: 0..<1)
            return (1...max(1, maxAttempts)).map { String(backoff.delay(afterAttempts: $0, random: random)) }.joined(separator: ",")
        }
    }

    /// Records the CRM's answer for each customer of batch `token`. Returns how many were synced.
    @discardableResult
    public func finish(token: String, results: [(customer: String, seq: Int64, result: Result)], policy: RetryPolicy, nowMs: Int64) async throws -> Int {
        var args = [adapter, token, String(policy.maxAttempts), String(nowMs), "", ""]  // 5 and 6: unused (the backoff was here)
        for (c, seq, r) in results {
            switch r {
            case .synced(let recordId): args += [c, String(seq), "ok", recordId ?? "", ""]
            case .retry(let reason): args += [c, String(seq), "retry", reason, policy.delays()]
            case .hold(let reason): args += [c, String(seq), "hold", reason, ""]
            case .failed(let code, let message): args += [c, String(seq), "dead", code, message]
            }
        }
        return try await redis.eval(Self.finishScript, keys: [], args: args).int ?? 0
    }

    /// Only the lease holder's answer counts (a batch whose lease expired was taken again). A synced
    /// record id becomes the customer's `crm:<adapter>:<id>` identity, without a resync (crmSilent).
    static let finishScript = RedisScript(
        name: "crm_finish",
        source: LuaCustomerLibrary.source + "\n" + #"""
            crmSilent = true
            local a, token, maxAttempts, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
            local inflight, retry, dirty = 'crm:{' .. a .. '}:inflight', 'crm:{' .. a .. '}:retry', 'crm:{' .. a .. '}:dirty'
            local status = 'crm:{' .. a .. '}:status'
            local synced, failed = 0, 0
            for i = 7, #ARGV, 5 do
              local c, seq, kind, x, y = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
              local state = 'crm:{' .. a .. '}:c:' .. c
              if redis.call('HGET', state, 'lease') == token then
                redis.call('HDEL', state, 'lease')
                redis.call('ZREM', inflight, c)
                if kind == 'ok' then
                  synced = synced + 1
                  if seq > tonumber(redis.call('HGET', state, 'syncedSeq') or '0') then redis.call('HSET', state, 'syncedSeq', seq) end
                  redis.call('HSET', state, 'syncedAt', now, 'attempts', 0)
                  redis.call('HDEL', state, 'lastError', 'lastErrorAt')
                  if x ~= '' then
                    redis.call('HSET', state, 'recordId', x)
                    local ident = 'crm:' .. a .. ':' .. x
                    local id, live = resolveLive(c)
                    if live and not redis.call('GET', 'idx:' .. ident) then
                      redis.call('SET', 'idx:' .. ident, id)
                      redis.call('SADD', idskey(id), ident)
                    end
                  end
                elseif kind == 'hold' then
                  redis.call('HSET', state, 'lastError', x, 'lastErrorAt', now)
                  redis.call('ZADD', dirty, 'NX', now, c)
                else
                  local attempts = redis.call('HINCRBY', state, 'attempts', 1)
                  redis.call('HSET', state, 'lastError', x .. (y ~= '' and kind == 'dead' and (': ' .. y) or ''), 'lastErrorAt', now)
                  if kind == 'dead' or attempts >= maxAttempts then
                    failed = failed + 1
                    redis.call('HSET', state, 'attempts', 0)
                    redis.call('ZREM', dirty, c)
                    redis.call('XADD', 'stream:crm:dlq', 'MAXLEN', '~', '100000', '*', 'adapter', a, 'customer', c,
                      'reason', kind == 'dead' and x or ('retries_exhausted:' .. x), 'message', y, 'at', now)
                  else
                    -- The retry sends the latest state, so a change queued meanwhile waits for it.
                    redis.call('ZREM', dirty, c)
                    -- The wait is the shared RetryPolicy's, computed in Swift per try (y: "d1,d2,...").
                    local delays = {}
                    for d in string.gmatch(y, '%d+') do delays[#delays + 1] = tonumber(d) end
                    local backoff = delays[math.min(attempts, #delays)] or 0
                    redis.call('ZADD', retry, tonumber(now) + backoff, c)
                  end
                end
              end
            end
            if synced > 0 then redis.call('HINCRBY', status, 'synced', synced); redis.call('HSET', status, 'lastSuccessAt', now) end
            if failed > 0 then redis.call('HINCRBY', status, 'deadLettered', failed) end
            return synced
            """#)

    // MARK: status

    public struct Status: Sendable {
        public var waiting = 0
        public var inFlight = 0
        public var retrying = 0
        public var fields = [String: String]()
    }

    public func status() async throws -> Status {
        let r = try await redis.pipeline([
            ["ZCARD", Keys.crmDirty(adapter: adapter)], ["ZCARD", Keys.crmInFlight(adapter: adapter)], ["ZCARD", Keys.crmRetry(adapter: adapter)],
            ["HGETALL", Keys.crmStatus(adapter: adapter)],
        ])
        var s = Status()
        s.waiting = r[0].int ?? 0
        s.inFlight = r[1].int ?? 0
        s.retrying = r[2].int ?? 0
        s.fields = r[3].dictionary
        return s
    }

    /// The customer's sync state with this adapter (seq, syncedSeq, recordId, syncedAt, attempts,
    /// lastError, lastErrorAt) and whether it waits, is on the wire or backs off.
    public func customerStatus(_ customer: String) async throws -> (fields: [String: String], queue: String?) {
        let r = try await redis.pipeline([
            ["HGETALL", Keys.crmCustomer(adapter: adapter, customer: customer)], ["ZSCORE", Keys.crmDirty(adapter: adapter), customer],
            ["ZSCORE", Keys.crmInFlight(adapter: adapter), customer], ["ZSCORE", Keys.crmRetry(adapter: adapter), customer],
        ])
        var fields = r[0].dictionary
        fields["lease"] = nil
        let queue = r[2].string != nil ? "in_flight" : r[3].string != nil ? "retrying" : r[1].string != nil ? "waiting" : nil
        return (fields, queue)
    }

    /// Records the adapter's last error and counts (a whole batch refused or throttled).
    public func noteError(_ text: String, nowMs: Int64, throttled: Bool) async throws {
        _ = try await redis.send([
            "HSET", Keys.crmStatus(adapter: adapter), "lastError", String(text.prefix(500)), "lastErrorAt", String(nowMs),
        ])
        if throttled { _ = try await redis.send("HINCRBY", Keys.crmStatus(adapter: adapter), "throttled", "1") }
    }

    public func noteCall() async throws {
        _ = try await redis.send("HINCRBY", Keys.crmStatus(adapter: adapter), "calls", "1")
    }
}

// MARK: erasures

extension CRMOutbox {
    /// A customer this CRM must delete (`<customer>|<CRM record id>`, queued by an erasure), once
    /// due, gone from our side, and not on the wire in a batch (an upsert in flight could land after
    /// the delete).
    public func dueErasure(nowMs: Int64, leaseMs: Int64) async throws -> (customer: String, recordId: String?)? {
        let r = try await redis.send("ZRANGEBYSCORE", Keys.crmErase(adapter: adapter), "-inf", String(nowMs), "LIMIT", "0", "1").strings
        guard let member = r.first else { return nil }
        let parts = member.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let customer = parts[0]
        // Until the erasure's own step has removed the customer, a sync could still write it back.
        if try await redis.send("HEXISTS", Keys.customer(customer), "createdAt").int == 1 {
            _ = try await redis.send("ZADD", Keys.crmErase(adapter: adapter), String(nowMs + 5000), member)
            return nil
        }
        if let lease = try await redis.send("ZSCORE", Keys.crmInFlight(adapter: adapter), customer).string.flatMap(Double.init), Int64(lease) > nowMs {
            _ = try await redis.send("ZADD", Keys.crmErase(adapter: adapter), String(Int64(lease) + 1), member)
            return nil
        }
        // Leased for the call: another process does not send the same delete meanwhile.
        _ = try await redis.send("ZADD", Keys.crmErase(adapter: adapter), String(nowMs + leaseMs), member)
        return (customer, parts.count > 1 && !parts[1].isEmpty ? parts[1] : nil)
    }

    public enum ErasureResult: Sendable, Equatable {
        /// Deleted (or the CRM had no such record).
        case erased
        case retry(afterMs: Int64, reason: String)
        /// Refused for good: dead-lettered for a person to handle.
        case refused(code: String, message: String)
    }

    public func finishErasure(customer: String, recordId: String?, _ result: ErasureResult, nowMs: Int64) async throws {
        let member = "\(customer)|\(recordId ?? "")"
        let key = Keys.crmErase(adapter: adapter)
        switch result {
        case .erased:
            _ = try await redis.pipelineChecked([
                ["ZREM", key, member], ["ZREM", Keys.crmInFlight(adapter: adapter), customer], ["HINCRBY", Keys.crmStatus(adapter: adapter), "erased", "1"],
            ])
        case .retry(let after, let reason):
            _ = try await redis.pipelineChecked([
                ["ZADD", key, String(nowMs + after), member],
                ["HSET", Keys.crmStatus(adapter: adapter), "lastError", "erase: " + String(reason.prefix(400)), "lastErrorAt", String(nowMs)],
            ])
        case .refused(let code, let message):
            _ = try await redis.pipelineChecked([
                ["ZREM", key, member], ["ZREM", Keys.crmInFlight(adapter: adapter), customer],
                [
                    "XADD", Keys.crmDeadLetters, "MAXLEN", "~", "100000", "*", "adapter", adapter, "customer", customer, "reason", "erase_refused:\(code)",
                    "message", String(message.prefix(300)), "at", String(nowMs),
                ],
                ["HINCRBY", Keys.crmStatus(adapter: adapter), "deadLettered", "1"],
            ])
        }
    }

    /// Erasures waiting for this CRM.
    public func pendingErasures() async throws -> Int { try await redis.send("ZCARD", Keys.crmErase(adapter: adapter)).int ?? 0 }
}
