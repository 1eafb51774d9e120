import GatewayCore

/// What erasing a person removes, decided from their footprint (pure: no Redis here).
/// - `atomic`: the `customer_erase` call: the person's records, identity index entries and index
///   memberships in one step, guarded by the identities and tags that were read.
/// - `cleanup`: commands run after it (messages, audiences, journey timers, sessions, CRM queues,
///   merge candidates, contact history). Each is idempotent, so a crash is completed by a rerun.
/// - `needles`: the values the stream purge looks for (ids, identity values, message ids).
/// - `crmErasures`: per CRM adapter that holds a record, `<customer>|<record id>` to delete there.
/// - `suppressed`: the addresses that keep an opt-out (keyed hash), so the person is never messaged again.
public struct ErasurePlan: Sendable {
    public var keys = [String]()
    public var args = [String]()
    public var cleanup = [[String]]()
    public var needles = [String]()
    public var crmErasures = [(adapter: String, member: String)]()
    public var suppressed = 0

    /// A cleanup step that is the `message_erase` function (keys: the message, its campaign's counters, its stream),
    /// not a Redis command: an unfinished campaign message counts as skipped so the campaign completes.
    public static let messageErase = "message_erase"
    public static let messageEraseSlot = "message_erase_slot"
    /// Cleanup steps on a cluster that are functions too, stored as `[name, numkeys, keys..., args...]`:
    /// a merged stub's erase and an identity index key's release.
    public static let customerErase = "customer_erase"
    public static let identityRelease = "identity_release"

    /// Consent states that mean "do not contact": kept as a suppression entry after erasure.
    static let optedOut: Set<String> = ["revoked", "opted_out", "unsubscribed", "bounced", "complained"]

    /// - campaignAudiences: every campaign's audience snapshot (its key as on a single Redis; a
    ///   cluster's shard copies are named from it); journeys: every journey id (their audiences and timers may
    ///   hold the person); crmAdapters: the configured CRM adapters; streams: how the send queues are
    ///   partitioned.
    public init(
        _ f: CustomerFootprint, campaignAudiences: [String], journeys: [String], crmAdapters: [String], suppression: AddressSuppression, nowMs: Int64,
        layout: IndexLayout = .single, streams: StreamPartitions = .single
    ) {
        let ids = f.customerIds
        let survivor = f.survivor
        let live = f.records.first { $0.id == survivor }

        // What goes with each record: its own keys, and its entries in the indexes of its shard.
        func deleted(_ r: CustomerFootprint.Record) -> [String] {
            let c = r.id
            let today = ScoreStore.beijingDay(nowMs)
            let named = [
                Keys.customer(c), Keys.customerTags(c), Keys.customerIdentities(c), Keys.customerTimeline(c), Keys.customerFieldIndexes(c),
                Keys.customerCampaigns(c), Keys.customerMessages(c), Keys.customerMerged(c), Keys.customerEvents(c), Keys.customerMergeCandidates(c),
            ]
            return Array(Set(named + (today - 2...today + 1).map { Keys.customerRuleCounts(c, day: $0) } + r.taggedKeys)).sorted()
        }
        func removals(_ r: CustomerFootprint.Record) -> [(key: String, op: String)] {
            let c = r.id
            let shard = layout.shard(customer: c)
            var rem = [(Keys.customers, "z|" + c), (Keys.lastSeenIndex, "z|" + c), (Keys.scores, "z|" + c), (Keys.scoresBuild, "z|" + c)]
            for name in r.fieldIndexes {
                if !name.hasPrefix("@") {
                    rem.append((Keys.fieldIndex(name), "s|" + c))
                } else if name != "@lastSeen" {
                    let parts = name.dropFirst().split(separator: "\u{1F}", maxSplits: 1, omittingEmptySubsequences: false)
                    let member = parts.count == 2 ? "\(parts[1])\u{1F}\(c)" : c
                    rem.append((Keys.attributeIndex(String(parts[0])), "z|" + member))
                }
            }
            rem += r.tags.map { (Keys.tag($0), "s|" + c) }
            return rem.map { (shard.key(single: $0.0), $0.1) }
        }
        let enrolments = f.journeys.map { Keys.journeyEnrolment(journey: $0.journey, customer: $0.customer) }
        let idx = f.records.flatMap { $0.identities.compactMap(Identity.init(storageForm:)).map(Keys.identity) }

        var sup = [(key: String, value: String)]()
        let existing = Dictionary(f.optOuts.map { ("\($0.channel) \($0.address)", $0.value) }, uniquingKeysWith: { a, _ in a })
        for a in CustomerFootprint.addressChannels(f.identities) {
            if let value = existing["\(a.channel) \(a.address)"] {
                sup.append((suppression.key(channel: a.channel, address: a.address), value))
            } else if let state = live?.hash[ConsentRecord.field(a.channel)].flatMap(ConsentRecord.init(stored:))?.state,
                Self.optedOut.contains(state)
            {
                sup.append((suppression.key(channel: a.channel, address: a.address), "\(state)|\(nowMs)"))
            }
        }
        var seenSup = Set<String>()
        sup = sup.filter { seenSup.insert($0.key).inserted }
        suppressed = sup.count

        /// One customer_erase call: the record `guarded` (its identity and tag sets named first).
        func step(guard kind: String, record: String, identities: [String], tags: [String], del: [String], idx: [String], rem: [(key: String, op: String)],
                  sup: [(key: String, value: String)]) -> (keys: [String], args: [String]) {
            let keys = [Keys.customer(record), Keys.customerIdentities(record), Keys.customerTags(record)] + del + idx + rem.map(\.key) + sup.map(\.key)
            var args = [kind] + [del.count, idx.count, rem.count, sup.count, identities.count, tags.count, ids.count].map(String.init)
            args += identities + tags + ids + rem.map(\.op) + sup.map(\.value)
            return (keys, args)
        }

        if layout == .single {
            // The atomic step: every record, identity index key and index entry at once.
            (keys, args) = step(
                guard: "live", record: survivor, identities: live?.identities ?? [], tags: live?.tags ?? [], del: f.records.flatMap(deleted) + enrolments,
                idx: idx, rem: f.records.flatMap(removals), sup: sup)
        } else {
            // A cluster: the live record's step (its slot) is the atomic one; the stubs' steps, the
            // identity index keys, the suppressions and the enrolments (other slots) lead the cleanup.
            let own = f.records.first { $0.id == survivor }
            (keys, args) = step(
                guard: "live", record: survivor, identities: live?.identities ?? [], tags: live?.tags ?? [], del: own.map(deleted) ?? [], idx: [],
                rem: own.map(removals) ?? [], sup: [])
            for r in f.records where r.id != survivor {
                let s = step(guard: "stub", record: r.id, identities: [], tags: [], del: deleted(r), idx: [], rem: removals(r), sup: [])
                cleanup.append([Self.customerErase, String(s.keys.count)] + s.keys + s.args)
            }
            cleanup += idx.map { [Self.identityRelease, "1", $0] + ids }
            cleanup += sup.map { ["SET", $0.key, $0.value] }
            if !enrolments.isEmpty { cleanup += enrolments.map { ["DEL", $0] } }
        }

        // After it.
        for (id, m) in f.messages {
            let stream = m["channel"].map { streams.outbound(channel: $0, lane: OutboundMessage.Lane(rawValue: m["lane"] ?? "") ?? .bulk, message: id) }
            if layout == .perSlot {
                // In the message's slot; its entry acknowledged after (the plain commands run after the functions).
                let shard = MessageStore.shard(ofMessage: id)
                cleanup.append([Self.messageEraseSlot, "2", Keys.counterOutbox(shard), Keys.message(id), m["campaign"].map(Keys.campaignStats) ?? ""])
                if let stream, let entry = m["entry"] {
                    cleanup += [["XACK", stream, Keys.outboundGroup, entry], ["XDEL", stream, entry]]
                }
            } else {
                cleanup.append([Self.messageErase, Keys.message(id), m["campaign"].map(Keys.campaignStats) ?? "", stream ?? ""])
            }
            if let key = m["idempotencyKey"] { cleanup.append(["DEL", Keys.idempotency(key)]) }
            if let pid = m["providerId"], let adapter = m["adapter"] { cleanup.append(["DEL", Keys.providerMessage(adapter: adapter, providerId: pid)]) }
            cleanup.append(["ZREM", Keys.outboundRetries, id])
            if let campaign = m["campaign"] { cleanup.append(["SREM", Keys.campaignParked(campaign), id]) }
        }
        for c in ids {
            let shard = layout.shard(customer: c)
            cleanup += campaignAudiences.map { ["SREM", shard.key(single: $0), c] }
            for j in journeys {
                cleanup.append(["SREM", shard.key(single: Keys.journeyAudience(j)), c])
                cleanup.append(["ZREM", Keys.journeyTimers(Keys.journeyTimerPartition(customer: c)), "\(j)|\(c)"])
            }
            for a in crmAdapters {
                cleanup += [["DEL", Keys.crmCustomer(adapter: a, customer: c)], ["ZREM", Keys.crmDirty(adapter: a), c], ["ZREM", Keys.crmRetry(adapter: a), c]]
            }
            cleanup.append(["DEL", Keys.contactHistory(c)])
        }
        for r in f.records { cleanup += r.eventIds.map { ["DEL", Keys.apiEvent($0)] } }
        for s in f.sessions {
            cleanup.append([
                "DEL", Keys.session(account: s.account, openid: s.openid), Keys.sessionMessages(account: s.account, openid: s.openid),
                Keys.sessionDedup(account: s.account, openid: s.openid),
            ])
            cleanup += s.dedupKeys.map { ["DEL", $0] }
        }
        let ours = Set(ids)
        for (id, m) in f.mergeCandidates {
            cleanup += [["DEL", Keys.mergeCandidate(id)], ["ZREM", Keys.pendingMergeCandidates, id]]
            if let a = m["customer"], let b = m["other"] {
                cleanup.append(["DEL", Keys.mergeCandidatePair(a, b)])
                for other in [a, b] where !ours.contains(other) { cleanup.append(["SREM", Keys.customerMergeCandidates(other), id]) }
            }
        }
        for i in f.identities {
            switch i.kind {
            case .phone: cleanup.append(["DEL", Keys.contactHistory(Keys.contactSubject(channel: "sms", address: i.value))])
            case .email: cleanup.append(["DEL", Keys.contactHistory(Keys.contactSubject(channel: "email", address: i.value))])
            case .openid: cleanup.append(["DEL", Keys.contactHistory(Keys.contactSubject(channel: "wechat", address: i.value))])
            default: break
            }
        }

        // The CRM records to delete, and what the stream purge looks for.
        crmErasures = f.crm.map { ($0.adapter, "\($0.customer)|\($0.fields["recordId"] ?? "")") }
        var needleSet = Set(ids)
        for i in f.identities where i.value.utf8.count >= 6 { needleSet.insert(i.value) }
        for m in f.messages { needleSet.insert(m.id) }
        needles = needleSet.sorted()
    }
}
