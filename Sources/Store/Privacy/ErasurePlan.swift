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

    /// Consent states that mean "do not contact": kept as a suppression entry after erasure.
    static let optedOut: Set<String> = ["revoked", "opted_out", "unsubscribed", "bounced", "complained"]

    /// - campaigns, journeys: every campaign and journey id (their audience snapshots and timers may
    ///   hold the person); crmAdapters: the configured CRM adapters.
    public init(
        _ f: CustomerFootprint, campaigns: [String], journeys: [String], crmAdapters: [String], suppression: AddressSuppression, nowMs: Int64
    ) {
        let ids = f.customerIds
        let survivor = f.survivor
        let live = f.records.first { $0.id == survivor }

        // The atomic step.
        var del = [String]()
        var idx = [String]()
        var rem = [(key: String, op: String)]()
        for r in f.records {
            let c = r.id
            del += [
                Keys.customer(c), Keys.customerTags(c), Keys.customerIdentities(c), Keys.customerTimeline(c), Keys.customerFieldIndexes(c),
                Keys.customerCampaigns(c), Keys.customerMessages(c), Keys.customerMerged(c), Keys.customerEvents(c), Keys.customerMergeCandidates(c),
            ]
            let today = ScoreStore.beijingDay(nowMs)
            del += (today - 2...today + 1).map { Keys.customerRuleCounts(c, day: $0) }
            idx += r.identities.compactMap(Identity.init(storageForm:)).map(Keys.identity)
            rem += [(Keys.customers, "z|" + c), (Keys.lastSeenIndex, "z|" + c), (Keys.scores, "z|" + c), (Keys.scoresBuild, "z|" + c)]
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
        }
        del += f.journeys.map { Keys.journeyEnrolment(journey: $0.journey, customer: $0.customer) }

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

        let liveIdentities = live?.identities ?? []
        let liveTags = live?.tags ?? []
        keys = [Keys.customer(survivor), Keys.customerIdentities(survivor), Keys.customerTags(survivor)] + del + idx + rem.map(\.key) + sup.map(\.key)
        args = [del.count, idx.count, rem.count, sup.count, liveIdentities.count, liveTags.count, ids.count].map(String.init)
        args += liveIdentities + liveTags + ids + rem.map(\.op) + sup.map(\.value)

        // After it.
        for (id, m) in f.messages {
            let stream = m["channel"].map { Keys.outboundStream(channel: $0, lane: OutboundMessage.Lane(rawValue: m["lane"] ?? "") ?? .bulk) }
            cleanup.append([Self.messageErase, Keys.message(id), m["campaign"].map(Keys.campaignStats) ?? "", stream ?? ""])
            if let key = m["idempotencyKey"] { cleanup.append(["DEL", Keys.idempotency(key)]) }
            if let pid = m["providerId"], let adapter = m["adapter"] { cleanup.append(["DEL", Keys.providerMessage(adapter: adapter, providerId: pid)]) }
            cleanup.append(["ZREM", Keys.outboundRetries, id])
            if let campaign = m["campaign"] { cleanup.append(["SREM", Keys.campaignParked(campaign), id]) }
        }
        for c in ids {
            cleanup += campaigns.map { ["SREM", Keys.campaignAudience($0), c] }
            for j in journeys {
                cleanup.append(["SREM", Keys.journeyAudience(j), c])
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
