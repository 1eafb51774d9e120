import GatewayCore
import RedisClient

/// Imported rows on a Redis Cluster, as single-slot steps (docs/cluster-key-model.md, "Imports"):
/// the identity index keys read and claimed (pipelines), the rows applied per shard
/// (`import_apply_rows`), then the merges the rows' identities call for (as steps). On a single Redis
/// a chunk is one call (`customers_import_rows`, `customers_import_chunk`).
extension CustomerStore {
    /// One row: its identities (storage forms; a new customer is created with the first), tags,
    /// profile and consent as field/value and channel/state pairs, and the id a new customer gets.
    struct ImportStepRow {
        var identities: [String]
        var tags: [String]
        var profile: [String]
        var consent: [String]
        var newId: String
    }

    /// Applies rows as a cluster does; safe to run again (a re-run finds the customers it created by
    /// their claimed identities). Returns how many customers were created and updated, and merges.
    func importRowsInSteps(_ given: [ImportStepRow], nowMs: Int64, source: String) async throws -> (created: Int, updated: Int, merged: Int) {
        let rows = given.filter { !$0.identities.isEmpty }
        guard !rows.isEmpty else { return (0, 0, 0) }
        // Who holds each identity now, merge redirects followed. A holder not created yet is one a
        // concurrent step claimed the identity for: the row joins it (its step creates it if missing).
        let identities = Array(Set(rows.flatMap(\.identities)))
        let held = try await redis.pipelineChecked(identities.map { ["GET", Keys.identity(storageForm: $0)] })
        var heldBy = [String: String]()
        for (identity, reply) in zip(identities, held) { if let id = reply.string { heldBy[identity] = id } }
        let survivors = try await survivors(Array(Set(heldBy.values)))
        var holder = [String: String]()  // identity -> its customer now, or the one this chunk gives it
        for (identity, id) in heldBy { holder[identity] = survivors[id] ?? id }

        // Each row's customer: the holder of its first held identity, else a new one (a later row with
        // one of its identities joins it). Identities no one holds are claimed for the row's customer.
        var customerOf = [String](repeating: "", count: rows.count)
        var claims = [(identity: String, id: String)]()
        for (i, row) in rows.enumerated() {
            let id = row.identities.lazy.compactMap { holder[$0] }.first ?? row.newId
            customerOf[i] = id
            for identity in row.identities where holder[identity] == nil {
                holder[identity] = id
                claims.append((identity, id))
            }
        }
        // Another process may have claimed one meanwhile: that customer takes the row (first
        // identity), or is merged with the row's below.
        let claimed = try await redis.pipelineChecked(claims.map { ["SET", Keys.identity(storageForm: $0.identity), $0.id, "NX", "GET"] })
        for (claim, reply) in zip(claims, claimed) {
            guard let other = reply.string, other != claim.id else { continue }
            holder[claim.identity] = other
            for i in customerOf.indices where customerOf[i] == claim.id && rows[i].identities.first == claim.identity { customerOf[i] = other }
        }

        // Apply per shard; rows whose customer was merged away meanwhile go again to the survivor.
        var pending = Array(rows.indices)
        var emitted = [String]()
        for _ in 0..<16 where !pending.isEmpty {
            var order = [IndexShard]()
            var byShard = [IndexShard: [Int]]()
            for i in pending {
                let shard = shards.layout.shard(customer: customerOf[i])
                if byShard[shard] == nil { order.append(shard) }
                byShard[shard, default: []].append(i)
            }
            let calls = order.map { shard -> (keys: [String], args: [String]) in
                let payload = JSONValue.array(
                    byShard[shard]!.map { i in
                        let row = rows[i]
                        let mine = row.identities.filter { holder[$0] == customerOf[i] }
                        return .array([
                            .string(customerOf[i]), .array(mine.map(JSONValue.string)), .array(row.tags.map(JSONValue.string)),
                            .array(row.profile.map(JSONValue.string)), .array(row.consent.map(JSONValue.string)),
                        ])
                    })
                return shards.call((shard, [customerOf[byShard[shard]![0]]]), args: [String(nowMs), String(timelineCap), source, payload.text])
            }
            let replies = try await redis.fcallAll(StoreFunctions.library, "import_apply_rows", calls: calls)
            pending = []
            for (shard, reply) in zip(order, replies) {
                let r = reply.array ?? []
                let moved = r.count > 1 ? r[1].strings : []
                for k in stride(from: 0, to: moved.count - 1, by: 2) {
                    guard let at = Int(moved[k]), at < byShard[shard]!.count else { continue }
                    let i = byShard[shard]![at]
                    for (identity, id) in holder where id == customerOf[i] { holder[identity] = moved[k + 1] }
                    customerOf[i] = moved[k + 1]
                    pending.append(i)
                }
                emitted += r.last?.strings ?? []
            }
        }
        try await appendEmitted(emitted)
        // The tag names (Keys.tags, one key of its own: the sharded function leaves it to its caller).
        let names = Set(rows.flatMap(\.tags))
        if !names.isEmpty { _ = try await redis.send(["SADD", Keys.tags] + names.sorted()) }
        // A row created its customer when it has its own new id, whether now or in a run of this chunk
        // cut off before its checkpoint (a re-run finds that customer by the identities it claimed).
        let created = rows.indices.filter { customerOf[$0] == rows[$0].newId }.count

        // The rows' identities held by other customers: those are the same person (merged, as steps).
        var pairs = Set<[String]>()
        for (i, row) in rows.enumerated() {
            for identity in row.identities { if let other = holder[identity], other != customerOf[i] { pairs.insert([customerOf[i], other].sorted()) } }
        }
        var merged = 0
        for pair in pairs.sorted(by: { $0.joined() < $1.joined() }) where try await mergeInSteps(pair[0], pair[1], nowMs: nowMs).merged != nil { merged += 1 }
        return (created, rows.count - created, merged)
    }

    /// Each id's surviving customer: merge redirects followed to their end.
    func survivors(_ ids: [String]) async throws -> [String: String] {
        var out = [String: String]()
        var current = Dictionary(uniqueKeysWithValues: ids.map { ($0, $0) })
        for _ in 0..<16 where !current.isEmpty {
            let starts = Array(current.keys)
            let r = try await redis.pipelineChecked(starts.map { ["HGET", Keys.customer(current[$0]!), "mergedInto"] })
            var next = [String: String]()
            for (start, reply) in zip(starts, r) {
                if let into = reply.string { next[start] = into } else { out[start] = current[start] }
            }
            current = next
        }
        return out
    }
}
