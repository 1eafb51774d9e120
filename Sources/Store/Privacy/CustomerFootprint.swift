import GatewayCore
import RedisClient

/// Everything Redis holds about one person, read through the customer's own reverse indexes (never
/// a keyspace scan; on a cluster also the keys of the customer's own slot): the customer and every customer merged into it, their journeys, messages,
/// merge candidates, WeChat sessions, CRM sync state and address opt-outs. The export is this, as
/// JSON; the erasure plan (`ErasurePlan`) is made from it. Stream entries are not read here: the
/// erasure's stream purge finds them by `needles`.
public struct CustomerFootprint: Sendable {
    /// One customer record: the person's live one first, then those merged into it (stubs).
    public struct Record: Sendable {
        public let id: String
        public let hash: [String: String]
        public let identities: [String]
        public let tags: [String]
        /// Raw JSON entries, newest first.
        public let timeline: [String]
        public let fieldIndexes: [String]
        /// Campaign -> `<ms>|<variant or holdout>[|<converted ms>]`.
        public let campaigns: [String: String]
        public let messageIds: [String]
        public let eventIds: [String]
        public let mergeCandidateIds: [String]
        /// On a cluster, the other keys under the record's hash tag (`cust:{<id>}:…`: the callbacks it
        /// ingested, the interactions it was scored for), found in its slot; none on a single Redis.
        public let taggedKeys: [String]
    }

    public struct Session: Sendable {
        public let account: String
        public let openid: String
        /// `<lastInteractionAt ms> <customer id>`, if the 48 h window is open.
        public let state: String?
        /// Raw JSON messages, oldest first.
        public let messages: [String]
        /// Dedup keys of the follower's recent callbacks.
        public let dedupKeys: [String]
    }

    public let survivor: String
    public let records: [Record]
    /// Journey -> the survivor's (or a merged record's) enrolment, per customer id.
    public let journeys: [(journey: String, customer: String, fields: [String: String])]
    public let messages: [(id: String, fields: [String: String])]
    public let mergeCandidates: [(id: String, fields: [String: String])]
    public let sessions: [Session]
    public let crm: [(adapter: String, customer: String, fields: [String: String])]
    /// Opt-outs recorded on the person's addresses: channel, address, `state|ms`.
    public let optOuts: [(channel: String, address: String, value: String)]

    public var customerIds: [String] { records.map(\.id) }
    public var identities: [Identity] { records.flatMap { $0.identities.compactMap(Identity.init(storageForm:)) } }

    /// Reads the footprint of `id` (following merges to the live customer); nil when no live customer.
    /// `crmAdapters`: the configured CRM adapter names.
    public static func read(_ id: String, redis: RedisPool, suppression: AddressSuppression, crmAdapters: [String]) async throws -> CustomerFootprint? {
        guard ULID.isValid(id) else { return nil }
        let survivor = try await CustomerStore.resolve(id, redis: redis)
        guard try await redis.send("HEXISTS", Keys.customer(survivor), "createdAt").int == 1 else { return nil }

        // The live record, then the records merged into it (and into those), breadth first.
        var records = [Record]()
        var queue = [survivor]
        var seen: Set<String> = [survivor]
        while !queue.isEmpty, records.count < 10_000 {
            let c = queue.removeFirst()
            let r = try await redis.pipelineChecked([
                ["HGETALL", Keys.customer(c)], ["SMEMBERS", Keys.customerIdentities(c)], ["SMEMBERS", Keys.customerTags(c)],
                ["LRANGE", Keys.customerTimeline(c), "0", "-1"], ["SMEMBERS", Keys.customerFieldIndexes(c)], ["HGETALL", Keys.customerCampaigns(c)],
                ["ZRANGE", Keys.customerMessages(c), "0", "-1"], ["SMEMBERS", Keys.customerEvents(c)], ["SMEMBERS", Keys.customerMerged(c)],
                ["SMEMBERS", Keys.customerMergeCandidates(c)],
            ])
            let tagged = try await redis.keysInSlot(of: Keys.customer(c))?.filter { $0.hasPrefix("cust:{\(c)}:") }.sorted() ?? []
            let record = Record(
                id: c, hash: r[0].dictionary, identities: r[1].strings.sorted(), tags: r[2].strings.sorted(), timeline: r[3].strings,
                fieldIndexes: r[4].strings, campaigns: r[5].dictionary, messageIds: r[6].strings, eventIds: r[7].strings,
                mergeCandidateIds: r[9].strings, taggedKeys: tagged)
            records.append(record)
            // Merges from before the merged index existed are on the survivor's timeline.
            for m in r[8].strings + mergedOnTimeline(record.timeline) where ULID.isValid(m) && !seen.contains(m) {
                seen.insert(m)
                queue.append(m)
            }
        }
        let ids = records.map(\.id)

        let journeyIds = try await redis.send("ZRANGE", Keys.journeys, "0", "-1").strings
        var journeys = [(journey: String, customer: String, fields: [String: String])]()
        let enrolmentPairs = journeyIds.flatMap { j in ids.map { (j, $0) } }
        if !enrolmentPairs.isEmpty {
            let replies = try await redis.pipelineChecked(enrolmentPairs.map { ["HGETALL", Keys.journeyEnrolment(journey: $0.0, customer: $0.1)] })
            for (pair, reply) in zip(enrolmentPairs, replies) where !reply.dictionary.isEmpty {
                journeys.append((pair.0, pair.1, reply.dictionary))
            }
        }

        let messageIds = records.flatMap(\.messageIds)
        let messageReplies = messageIds.isEmpty ? [] : try await redis.pipelineChecked(messageIds.map { ["HGETALL", Keys.message($0)] })
        let messages = zip(messageIds, messageReplies).compactMap { id, r in r.dictionary.isEmpty ? nil : (id, r.dictionary) }

        let candidateIds = Array(Set(records.flatMap(\.mergeCandidateIds))).sorted()
        let candidateReplies = candidateIds.isEmpty ? [] : try await redis.pipelineChecked(candidateIds.map { ["HGETALL", Keys.mergeCandidate($0)] })
        let candidates = zip(candidateIds, candidateReplies).compactMap { id, r in r.dictionary.isEmpty ? nil : (id, r.dictionary) }

        let identities = records.flatMap { $0.identities.compactMap(Identity.init(storageForm:)) }
        let followers = identities.filter { ($0.kind == .openid || $0.kind == .wecom || $0.kind == .douyin) && $0.account != nil }
        var sessions = [Session]()
        for f in followers {
            let account = f.account ?? ""
            let r = try await redis.pipelineChecked([
                ["GET", Keys.session(account: account, openid: f.value)], ["LRANGE", Keys.sessionMessages(account: account, openid: f.value), "0", "-1"],
                ["SMEMBERS", Keys.sessionDedup(account: account, openid: f.value)],
            ])
            if r[0].string != nil || !r[1].strings.isEmpty || !r[2].strings.isEmpty {
                sessions.append(Session(account: account, openid: f.value, state: r[0].string, messages: r[1].strings, dedupKeys: r[2].strings))
            }
        }

        let crmPairs = crmAdapters.flatMap { a in ids.map { (a, $0) } }
        let crmReplies = crmPairs.isEmpty ? [] : try await redis.pipelineChecked(crmPairs.map { ["HGETALL", Keys.crmCustomer(adapter: $0.0, customer: $0.1)] })
        let crm = zip(crmPairs, crmReplies).compactMap { pair, r in r.dictionary.isEmpty ? nil : (pair.0, pair.1, r.dictionary) }

        let addresses = addressChannels(identities)
        let optReplies = addresses.isEmpty ? [] : try await redis.pipelineChecked(addresses.map { ["GET", suppression.key(channel: $0.channel, address: $0.address)] })
        let optOuts = zip(addresses, optReplies).compactMap { a, r in r.string.map { (a.channel, a.address, $0) } }

        return CustomerFootprint(
            survivor: survivor, records: records, journeys: journeys, messages: messages, mergeCandidates: candidates, sessions: sessions, crm: crm,
            optOuts: optOuts)
    }

    /// The addresses that take opt-outs: phones on `sms`, emails on `email`.
    static func addressChannels(_ identities: [Identity]) -> [(channel: String, address: String)] {
        identities.compactMap { i in
            switch i.kind {
            case .phone: ("sms", i.value)
            case .email: ("email", i.value)
            default: nil
            }
        }
    }

    /// Ids named by `customer.merged` timeline entries (`data.merged`).
    static func mergedOnTimeline(_ timeline: [String]) -> [String] {
        timeline.compactMap { entry in
            guard entry.contains("customer.merged"), let v = JSONValue.parse(Array(entry.utf8)), v.lookup("type")?.scalarText == "customer.merged" else {
                return nil
            }
            return v.lookup("data")?.lookup("merged")?.scalarText
        }
    }
}
