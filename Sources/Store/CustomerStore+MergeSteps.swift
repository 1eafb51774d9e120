import GatewayCore
import RedisClient

/// Merges and identity binding on a Redis Cluster, as single-slot steps (docs/cluster-key-model.md,
/// "Identity and merge"). On a single Redis the same Lua phases run in one call (`merge` in
/// customer_base.lua).
extension CustomerStore {
    /// Merges two customers (following redirects first); the older survives. Steps, each safe to run
    /// again: the merge is listed in `Keys.pendingMerges`; `merge_begin` marks the loser (its writes
    /// go to the survivor from then on) and exports it; `merge_absorb` adds it to the survivor once;
    /// the loser's identity index keys are pointed at the survivor; `merge_retire` leaves the loser a
    /// redirect stub; `customer.merged` goes on the inbound stream once; the listing is removed.
    /// Returns the survivor and the merged id (nil when the two were one already).
    /// `retiring`: the loser of a merge begun before (its export has no createdAt to order by then).
    func mergeInSteps(_ a: String, _ b: String, nowMs: Int64, retiring: String? = nil) async throws -> (survivor: String, merged: String?) {
        let a = try await resolve(a)
        let b = try await resolve(b)
        guard a != b else { return (a, nil) }
        let created = try await redis.pipelineChecked([["HGET", Keys.customer(a), "createdAt"], ["HGET", Keys.customer(b), "createdAt"]])
        let (win, lose) = retiring.map { r in (r == a ? b : a, r) } ?? Self.mergeOrder(a, created[0].string, b, created[1].string)
        let pending = "\(lose)|\(win)"
        try await redis.send("ZADD", Keys.pendingMerges, String(nowMs), pending)

        let begun = try await redis.fcall(StoreFunctions.library, "merge_begin", keys: [Keys.customer(lose)], args: [lose, win]).array ?? []
        if begun.first?.string == "ok", let data = begun.count > 1 ? begun[1].string : nil {
            let absorbed = try await redis.fcall(
                StoreFunctions.library, "merge_absorb", keys: [Keys.customer(win)],
                args: shards.arguments(customer: win) + [win, lose, data, String(nowMs), String(timelineCap)]
            ).array ?? []
            if absorbed.first?.string == "moved" {
                // The survivor is being merged into another meanwhile: answered unavailable, and the
                // caller's retry merges into that one (the pending listing names this merge).
                throw RedisError(.connection, command: "FCALL merge_absorb", message: "customer \(win) is being merged")
            }
            try await appendEmitted(absorbed.last?.strings ?? [])
            let identities = Self.exportedIdentities(data)
            if !identities.isEmpty { _ = try await redis.pipelineChecked(identities.map { ["SET", Keys.identity(storageForm: $0), win] }) }
            let retired = try await redis.fcall(
                StoreFunctions.library, "merge_retire", keys: [Keys.customer(lose)], args: shards.arguments(customer: lose) + [lose, win, String(nowMs)]
            ).array ?? []
            try await appendEmitted(retired.last?.strings ?? [])
        }
        let stream = redis.streams.inbound(customer: win)
        _ = try await redis.fcall(
            StoreFunctions.library, "ingest_append", keys: [stream, Keys.streamAppended(stream, op: "merge:" + lose)],
            args: [String(dedupTTLSeconds), String(streamMaxLen), "type", "customer.merged", "customer", win, "merged", lose, "at", String(nowMs)])
        try await redis.send("ZREM", Keys.pendingMerges, pending)
        return (win, lose)
    }

    /// The older customer (createdAt, then id) survives a merge; the twin of `mergeOrder` in
    /// customer_base.lua, which decides a merge made in one call on a single Redis.
    static func mergeOrder(_ a: String, _ createdA: String?, _ b: String, _ createdB: String?) -> (survivor: String, merged: String) {
        let ca = Int64(createdA ?? "0") ?? 0
        let cb = Int64(createdB ?? "0") ?? 0
        return cb < ca || (cb == ca && b < a) ? (b, a) : (a, b)
    }

    /// The identities in `merge_begin`'s export (`{"ids":[...]}`; an empty list may come as `{}`).
    static func exportedIdentities(_ data: String) -> [String] {
        guard case .object(let o)? = JSONValue.parse(Array(data.utf8)), case .array(let ids)? = o["ids"] else { return [] }
        return ids.compactMap { if case .string(let s) = $0 { s } else { nil } }
    }

    /// `bind` on a cluster: the identity's index key claimed for the customer, or the customer that
    /// holds it merged with this one (as steps), then the identity added to the survivor.
    func bindInSteps(_ identity: Identity, to id: String, nowMs: Int64, entry: String) async throws -> BindOutcome {
        var id = try await resolve(id)
        guard try await redis.send("HEXISTS", Keys.customer(id), "createdAt").int == 1 else { return .notFound }
        let claim = try await claimOrMerge(identity, for: id, nowMs: nowMs)
        if claim.held { return .alreadyBound(customerId: id) }
        id = claim.id
        let (survivor, r) = try await callFollowingMerges("customer_add_identity", id) { [$0, identity.storageForm, String(self.timelineCap), entry] }
        guard r.first?.string == "ok" else { return .notFound }
        id = survivor
        try await appendEmitted(r.last?.strings ?? [])
        // An interaction too: binding a phone or email can score (identity.bound, data.type).
        try await redis.send(
            "XADD", redis.streams.inbound(customer: id), "MAXLEN", "~", String(streamMaxLen), "*", "type", "identity.bound", "customer", id, "payload",
            JSONValue.object(["type": .string(identity.kind.rawValue)]).text, "at", String(nowMs))
        return claim.merged.map { .merged(survivor: id, merged: $0) } ?? .bound(customerId: id)
    }

    /// Completes the merges begun as steps at least `olderThanMs` ago and never finished (a process
    /// stopped between the steps): each is run again from the start, which changes nothing it did
    /// already. Returns how many it completed.
    @discardableResult
    public func finishPendingMerges(nowMs: Int64, olderThanMs: Int64 = 60_000) async throws -> Int {
        let stale = try await redis.send("ZRANGEBYSCORE", Keys.pendingMerges, "-inf", String(nowMs - olderThanMs), "LIMIT", "0", "100").strings
        for member in stale {
            let parts = member.split(separator: "|").map(String.init)
            if parts.count == 2 {
                let lose = parts[0], win = parts[1]
                // The loser may be the one still marked: its hash names the survivor it was going to.
                if try await redis.send("HEXISTS", Keys.customer(lose), "mergedInto").int == 0 {
                    _ = try await mergeInSteps(win, lose, nowMs: nowMs, retiring: lose)
                }
            }
            try await redis.send("ZREM", Keys.pendingMerges, member)
        }
        return stale.count
    }

    /// Runs `finishPendingMerges` every few seconds until cancelled (any process may finish another's).
    public func sweepMerges(clock: @escaping @Sendable () -> Int64) async {
        while !Task.isCancelled {
            _ = try? await finishPendingMerges(nowMs: clock())
            try? await Task.sleep(for: .seconds(5))
        }
    }
}
