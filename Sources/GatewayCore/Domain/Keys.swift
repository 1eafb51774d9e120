import GatewayCrypto

/// Every Redis key name, in one place. Per-customer keys share the `{id}` hash tag so that a
/// customer's multi-key operations stay in one Redis Cluster slot.
public enum Keys {
    public static func customer(_ id: String) -> String { "cust:{\(id)}" }
    public static func customerTags(_ id: String) -> String { "cust:{\(id)}:tags" }
    public static func customerIdentities(_ id: String) -> String { "cust:{\(id)}:ids" }
    public static func customerTimeline(_ id: String) -> String { "cust:{\(id)}:timeline" }
    /// Sorted set of live customer ids by creation time.
    public static let customers = "customers"
    /// One hour's activity counts for the dashboard (hour = epoch ms / 3,600,000), its own slot.
    public static func activityHour(_ hour: Int64) -> String { "activity:{\(hour)}" }

    public static func identity(_ identity: Identity) -> String { Keys.identity(storageForm: identity.storageForm) }
    public static func identity(storageForm: String) -> String { "idx:" + storageForm }

    public static func tag(_ name: String) -> String { "tag:\(name)" }
    /// Set of the customers an audience predicate selects: `all`, `account:<a>`, `consent:<channel>`,
    /// `consent:wechat:<a>`, `stage:<s>`, `tier:<t>` (kept by the customer scripts' `reindex`).
    public static func fieldIndex(_ name: String) -> String { "fidx:\(name)" }
    /// Which field indexes hold the customer.
    public static func customerFieldIndexes(_ id: String) -> String { "cust:{\(id)}:fidx" }
    /// The campaigns that reached the customer (or held it out): campaign -> `<ms>|<variant or
    /// holdout>`, then `|<converted ms>` once its goal was met. Read by conversion attribution.
    public static func customerCampaigns(_ id: String) -> String { "cust:{\(id)}:camps" }
    /// The customer's outbound messages (sorted set: message id -> createdAt ms), kept as long as the
    /// messages are (`MessageStore.retentionMs`): what an erasure or export finds them by.
    public static func customerMessages(_ id: String) -> String { "cust:{\(id)}:msgs" }
    /// How often each scoring rule with a daily cap hit the customer on one (Beijing) day.
    /// An interaction scored already (its `stream:inbound` entry id), kept a week: scoring it again is a no-op.
    public static func scoredInteraction(_ interaction: String) -> String { "scored:\(interaction)" }
    /// The same mark on a cluster, in the customer's slot.
    public static func customerScored(_ id: String, interaction: String) -> String { "cust:{\(id)}:scored:\(interaction)" }
    public static func customerRuleCounts(_ id: String, day: Int64) -> String { "cust:{\(id)}:rules:\(day)" }
    /// The customers merged into this one (their ids; their `cust:{id}` hash is a `mergedInto` stub).
    public static func customerMerged(_ id: String) -> String { "cust:{\(id)}:merged" }
    /// The merge candidates (`mergeCandidate` ids) that name the customer.
    public static func customerMergeCandidates(_ id: String) -> String { "cust:{\(id)}:mergecands" }
    /// The callbacks applied to the customer by the cluster's ingest steps, for the dedup window (a
    /// sorted set: dedup key -> 2 x applied-at ms, plus 1 when it created the customer; older ones
    /// pruned as new ones come): a retried chain changes the customer once.
    public static func customerIngested(_ id: String) -> String { "cust:{\(id)}:ingested" }
    /// Client event ids (`apiEvent`) recorded for the customer, for as long as those are kept.
    public static func customerEvents(_ id: String) -> String { "cust:{\(id)}:evts" }
    /// Version of the field indexes the data was last reindexed for.
    public static let fieldIndexVersion = "fidx-version"
    /// Index of one profile attribute (`CustomerAttributes`): sorted set of customer ids by number or
    /// time (ms), or for text `<ASCII-lowercased value>\u{1F}<id>` at score 0 (ZRANGE BYLEX).
    public static func attributeIndex(_ name: String) -> String { "pidx:\(name)" }
    /// Which attributes are indexed and how (hash name -> n, d or s), written at start for the Lua reindex.
    public static let attributeSchema = "schema:attributes"
    /// Sorted set customer id -> lastSeenAt (ms).
    public static let lastSeenIndex = "lastseen"
    /// Sorted set customer id -> lead score (absent = 0); with decay (a half-life H) the value is
    /// log2(score) + scoreAt / H, so that it orders decayed scores at any time (scoreIndexValue in
    /// customer_base.lua).
    public static let scores = "scores"
    /// The half-life the scores index is built with (`halfLifeMs`), and while it is rebuilt for another
    /// one, that one (`buildHalfLifeMs`); the index being built. See scoreIndexValue in customer_base.lua.
    public static let scoresMeta = "scores:meta"
    public static let scoresBuild = "scores:build"
    public static let scoresBuildLease = "scores:build:lease"
    /// Held (with an expiry) for one round of score-based tiers evaluated again under decay.
    public static let scoresTierRefresh = "scores:tiers:refresh"
    /// Set of every known tag name.
    public static let tags = "tags"

    // Per-account WeChat surfaces, each account in its own slot.
    /// Hash scene -> `QRScene` JSON: the codes created through the API.
    public static func qrScenes(account: String) -> String { "wx:{acct:\(account)}:scenes" }
    /// Hash `<scene>\u{1F}scans|subscribes|unsubscribes` -> count: the source-attribution report.
    public static func qrSceneStats(account: String) -> String { "wx:{acct:\(account)}:scenestats" }
    /// String: the account's `ReplyRules` as JSON (absent: the config file's rules).
    public static func replyRules(account: String) -> String { "wx:{acct:\(account)}:replies" }
    /// String: the account's custom menu as last published (`menu/create` body).
    public static func menu(account: String) -> String { "wx:{acct:\(account)}:menu" }
    /// String: the media id WeChat gave a file (`WeChatMedia.contentHash`), kept a little less than
    /// WeChat keeps temporary media.
    public static func mediaCache(account: String, kind: String, hash: String) -> String { "wx:{acct:\(account)}:media:\(kind):\(hash)" }
    /// Mass sends the account made in a quota period (`MassSendQuota.window`), expiring with it.
    public static func massSendQuota(account: String, window: String) -> String { "wx:{acct:\(account)}:massquota:\(window)" }
    /// Hash WeChat msg id -> `MassSendJob` JSON: the account's mass sends and their outcomes.
    public static func massSends(account: String) -> String { "wx:{acct:\(account)}:mass" }
    /// WeCom group send: the campaign's groups (`<variant>|<owner>`), each group's recipients
    /// (external contact id -> customer), the tasks (task id -> JSON), their claims (task id ->
    /// `<ms>|<process>` or `done`), and each recipient's last result (external contact id -> status).
    public static func campaignWeComGroups(_ id: String) -> String { "camp:{\(id)}:wecom:groups" }
    public static func campaignWeComRecipients(_ id: String, group: String) -> String { "camp:{\(id)}:wecom:r:\(group)" }
    public static func campaignWeComTasks(_ id: String) -> String { "camp:{\(id)}:wecom:tasks" }
    public static func campaignWeComClaims(_ id: String) -> String { "camp:{\(id)}:wecom:claims" }
    public static func campaignWeComResults(_ id: String) -> String { "camp:{\(id)}:wecom:results" }
    /// Group-send tasks whose results are due to be polled: `<campaign>|<task id>` scored by when.
    public static let wecomResultPolls = "wecom:polls"
    /// Set of `<account>|<msg id>`: the mass sends made for a campaign (its report shows them).
    public static func campaignMassSends(_ id: String) -> String { "camp:{\(id)}:mass" }
    /// Counter bumped by every change to the account's scenes or replies; each process polls it.
    public static func surfaceVersion(account: String) -> String { "wx:{acct:\(account)}:version" }

    /// String "<lastInteractionAt ms> <customer id>", expiring with the 48 h window.
    public static func session(account: String, openid: String) -> String { "sess:{\(account):\(openid)}" }
    /// List of the session's last messages (JSON), oldest first, same expiry.
    public static func sessionMessages(account: String, openid: String) -> String { "sess:{\(account):\(openid)}:msgs" }

    /// A callback already stored (value: the reply given), by the SHA-256 of its dedup key (which
    /// names the sender's openid), for `webhooks.dedupTTLSeconds`. A follower's callbacks share the
    /// slot of its session keys (`{<account>:<sender>}`), so that the last step of an ingest on a
    /// cluster writes both; a callback of no follower has a slot of its own.
    public static func dedup(account: String, sender: String?, key: String) -> String {
        let hash = Hex.encode(Digest.sha256(Array(key.utf8)).prefix(16))
        guard let sender, !sender.isEmpty else { return "dedup:\(account):" + hash }
        return "dedup:{\(account):\(sender)}:" + hash
    }
    /// The dedup keys of one follower's callbacks still in the dedup window, so that an erasure can
    /// remove them (their replies name the follower).
    public static func sessionDedup(account: String, openid: String) -> String { "sess:{\(account):\(openid)}:dedup" }
    /// A callback's timestamp and nonce, whichever signature (plain or msg_signature) it carried, so a
    /// signature taken from one request cannot be used in another mode. Value: the SHA-256 of the first
    /// request's query and body: an identical request is a retry, any other a replay.
    public static func nonce(account: String, timestamp: String, nonce: String) -> String { "nonce:\(account):\(timestamp):\(nonce)" }

    /// Every interaction, for scoring, journeys, conversions and profile fetches; on a cluster split
    /// into partitions by customer (`StreamPartitions.inbound`).
    public static let inboundStream = "stream:inbound"
    /// A callback (by its dedup key) appended to a stream already, for the dedup window: in the
    /// stream's own slot (its name as the hash tag, or a partition's own tag), so one call checks it
    /// and appends.
    public static func streamAppended(_ stream: String, op: String) -> String {
        (stream.contains("{") ? stream : "{\(stream)}") + ":op:" + Hex.encode(Digest.sha256(Array(op.utf8)).prefix(16))
    }

    /// GCRA state of one adapter's limit; `scope` names the account or sender it is per ("" = the adapter).
    public static func rateLimit(adapter: String, scope: String = "") -> String { scope.isEmpty ? "rl:{\(adapter)}" : "rl:{\(adapter)}:\(scope)" }
    /// How the provider has treated that limit: hash factor (0.05...1 of the spec's rate), pauseUntil
    /// and suspendUntil (µs, Redis clock), lastRaise.
    public static func rateLimitState(_ rateLimitKey: String) -> String { rateLimitKey + ":state" }

    /// Stream of the requests a sandbox adapter rendered instead of sending, per channel.
    public static func sandbox(channel: String) -> String { "sandbox:\(channel)" }

    /// Hash of one WeChat account's access token: token, expiresAt (ms), stale (1 = refused by WeChat), fence.
    public static func accessToken(account: String) -> String { "token:{\(account)}" }
    /// The refresh lock (value = the holder's fence) and the fence counter.
    public static func accessTokenLock(account: String) -> String { "token:{\(account)}:lock" }
    public static func accessTokenFence(account: String) -> String { "token:{\(account)}:fence" }
    /// A Douyin account's current refresh token (token, expiresAt ms): the configured one until it is
    /// renewed (`/oauth/renew_refresh_token/`), then the renewed one.
    public static func accessTokenRefresh(account: String) -> String { "token:{\(account)}:refresh" }
    /// Token fetches on one day (Beijing time, when WeChat's counters reset).
    public static func accessTokenFetches(account: String, day: Int64) -> String { "token:{\(account)}:fetches:\(day)" }

    /// One outbound message (see `OutboundMessage`); on a cluster in its recipient's slot (`MessageId`).
    public static func message(_ id: String) -> String { MessageId.key(id) }
    /// A cluster slot's counts waiting for their campaign and journey stats (hash `<key>\t<field>\t<expire>`
    /// -> amount), written with a message's change in its slot, flushed by MessageStore.
    public static func counterOutbox(_ shard: IndexShard) -> String { shard.key("cnt") }
    /// An outbox being flushed (field `\ttake`: the take id).
    public static func counterOutboxTaking(_ shard: IndexShard) -> String { shard.key("cnt", "taking") }
    /// The last take number of each slot's outbox added to a counter key (source tag -> take), in the
    /// key's slot; kept a day past the last.
    public static func counterApplied(_ key: String) -> String { "\(key):applied" }
    /// A slot's last counter outbox take number.
    public static func counterOutboxSequence(_ shard: IndexShard) -> String { shard.key("cnt", "seq") }
    /// Idempotency key -> message id: a second POST with the same key gets the first message.
    public static func idempotency(_ key: String) -> String { "idem:\(key)" }
    /// The send queue of a channel; the transactional lane is served first. On a cluster it is split
    /// into partitions (`StreamPartitions.outbound`).
    public static func outboundStream(channel: String, lane: OutboundMessage.Lane) -> String {
        lane == .transactional ? "stream:out:\(channel):tx" : "stream:out:\(channel)"
    }
    /// The channel of a send queue (`outboundStream`, or a partition of one), nil for another stream.
    public static func outboundChannel(stream: String) -> String? {
        let base = StreamPartitions.base(of: stream)
        guard base.hasPrefix("stream:out:") else { return nil }
        let rest = base.dropFirst("stream:out:".count)
        return String(rest.hasSuffix(":tx") ? rest.dropLast(3) : rest)
    }
    public static let outboundGroup = "senders"
    /// Sorted set of message ids waiting for a retry, by due time (ms).
    public static let outboundRetries = "out:retry"
    /// A sender process is alive while its key lives (refreshed every second, a few seconds' TTL).
    public static func senderAlive(_ consumer: String) -> String { "out:alive:\(consumer)" }
    /// Sender processes that keep a liveness key: consumer -> first seen (ms). Pending entries of one
    /// whose key is gone are taken over at once; other consumers' after `claimIdleSeconds`.
    public static let sendersTracked = "out:senders"
    /// Dead letters: message id, reason, code, the provider's last answer.
    public static let deadLetters = "stream:dlq"
    /// Provider message id -> our message id, for receipts.
    public static func providerMessage(adapter: String, providerId: String) -> String { "pid:\(adapter):\(providerId)" }

    /// An address that unsubscribed, bounced or was erased: `state|ms`, under the keyed hash of the
    /// address (`AddressSuppression`), never the address itself.
    public static func optOut(channel: String, addressHash: String) -> String { "optout:\(channel):\(addressHash)" }
    /// `hashed` once opt-outs stored under the plain address were moved to their hashed keys.
    public static let optOutFormat = "optout-format"

    /// Progress of an account's follower import: state, total, imported, next (openid), error, times.
    public static func followerImport(account: String) -> String { "import:{\(account)}" }
    /// Progress of pushing one of our tags to an account's WeChat tag (same fields as an import).
    public static func tagPush(account: String, tag: String) -> String { "wxpush:{\(account)}:\(tag)" }
    /// WeChat's id for our tag in an account.
    public static func wechatTagId(account: String, tag: String) -> String { "wxtag:{\(account)}:\(tag)" }
    /// A campaign: state, definition (JSON), times, planning checkpoint.
    public static func campaign(_ id: String) -> String { "camp:{\(id)}" }
    /// Counters of a campaign (see CampaignStatsLua).
    public static func campaignStats(_ id: String) -> String { "camp:{\(id)}:stats" }
    /// Sends per second of a campaign (second -> count, last two minutes).
    public static func campaignSendRate(_ id: String) -> String { "camp:{\(id)}:sec" }
    /// The audience snapshot taken at start (set of customer ids).
    public static func campaignAudience(_ id: String) -> String { "camp:{\(id)}:audience" }
    /// Message ids a sender set aside while the campaign was paused; resume puts them back.
    public static func campaignParked(_ id: String) -> String { "camp:{\(id)}:parked" }
    /// The planner lease: one process plans a campaign at a time (value = holder).
    public static func campaignPlanner(_ id: String) -> String { "camp:{\(id)}:planner" }
    /// Campaigns with a goal: campaign -> `<event type>|<window ms>` (conversion attribution).
    public static let campaignGoals = "campaigns:goals"
    /// Every campaign by creation time, and the ones the runner watches (scheduled, running, paused).
    public static let campaigns = "campaigns"
    /// A journey: id, name, state (draft, active, paused, archived), version (the current one),
    /// createdAt, updatedAt.
    public static func journey(_ id: String) -> String { "journey:{\(id)}" }
    /// Version `n` of a journey's definition (JSON): enrolled customers finish on the version they entered.
    public static func journeyVersion(_ id: String, _ n: Int) -> String { "journey:{\(id)}:v:\(n)" }
    /// Sorted set: journey id -> createdAt (ms).
    public static let journeys = "journeys"
    /// Saved audience segments: name -> the segment as JSON (`SegmentStore`).
    public static let segments = "segments"
    /// Set of the journeys that enrol customers (active).
    public static let activeJourneys = "journeys:active"
    /// Per-step counters of a journey (`s:<step>:entered`, `s:<step>:completed`, `s:<step>:skipped:<reason>`,
    /// `s:<step>:exited`, `s:<step>:converted`; for a send `s:<step>:queued`, then the outbound ledger's
    /// `sent`, `delivered`, `failed`, `clicked`, `opened`) and totals (enrolled, completed, exited,
    /// converted, audience).
    public static func journeyStats(_ id: String) -> String { "journey:{\(id)}:stats" }
    /// A customer's place in a journey: version, step, seq (rises with every move), state (active,
    /// done, exited), late, anchor, enrolledAt, stepAt, and the claim of the process running its step.
    public static func journeyEnrolment(journey: String, customer: String) -> String { "cust:{\(customer)}:jrn:\(journey)" }
    /// Due-time index of journey steps, one of `journeyTimerPartitions` (by customer), member
    /// `<journey>|<customer>`, score = when the step is due (ms).
    public static func journeyTimers(_ partition: Int) -> String { "jrn:due:{p\(partition)}" }
    public static let journeyTimerPartitions = 16
    /// `tag:<name>` and `stage:<name>` that active journeys enrol on: the customer scripts signal those
    /// on `journeySignals` (kept by the journey runners from the active journeys).
    public static let journeyWatch = "journeys:watch"
    /// Stream of tags added and stages reached that a journey watches (`customer`, `kind`, `value`).
    public static let journeySignals = "stream:journeys"
    /// The members of an audience-triggered journey still to enrol (a snapshot taken at activation).
    public static func journeyAudience(_ id: String) -> String { "journey:{\(id)}:audience" }
    /// The lease of the process enrolling an audience-triggered journey's members.
    public static func journeyAudienceLease(_ id: String) -> String { "journey:{\(id)}:audlease" }
    /// The partition of a customer's journey timers (FNV-1a of the id).
    public static func journeyTimerPartition(customer: String) -> Int {
        var h: UInt32 = 2_166_136_261
        for b in customer.utf8 { h = (h ^ UInt32(b)) &* 16_777_619 }
        return Int(h % UInt32(journeyTimerPartitions))
    }
    public static let activeCampaigns = "campaigns:active"
    /// Marketing messages claimed for one recipient (customer id, or channel:address): member
    /// `channel:messageId`, score ms; read by the frequency caps.
    public static func contactHistory(_ subject: String) -> String { "contact:{\(subject)}" }
    /// The history subject of a recipient known only by an address: `<channel>:<address>`.
    public static func contactSubject(channel: String, address: String) -> String { "\(channel):\(address)" }

    /// Changes of qualified customers (field `customer`, `reason`); each CRM adapter reads it with its
    /// own consumer group (`crm:<adapter>`) into its coalescing queue.
    public static let crmStream = "stream:crm"
    public static func crmGroup(adapter: String) -> String { "crm:\(adapter)" }
    /// Customers waiting to be synced to one adapter: score = when the batch must go at the latest.
    public static func crmDirty(adapter: String) -> String { "crm:{\(adapter)}:dirty" }
    /// Customers in a batch on the wire: score = lease deadline (ms); a customer is in one batch at a time.
    public static func crmInFlight(adapter: String) -> String { "crm:{\(adapter)}:inflight" }
    /// Customers backing off after a failed batch: score = when they may go again (ms).
    public static func crmRetry(adapter: String) -> String { "crm:{\(adapter)}:retry" }
    /// One customer's sync with one adapter: seq (snapshots taken), syncedSeq, recordId, syncedAt,
    /// attempts, lastError, lastErrorAt.
    public static func crmCustomer(adapter: String, customer: String) -> String { "crm:{\(adapter)}:c:\(customer)" }
    /// Adapter status: lastSuccessAt, lastErrorAt, lastError, synced, failed, calls, throttled.
    public static func crmStatus(adapter: String) -> String { "crm:{\(adapter)}:status" }
    /// The adapter's request budget: sorted set of request times (µs) in the rolling window, and a pause.
    public static func crmBudget(adapter: String) -> String { "crm:{\(adapter)}:budget" }
    public static func crmPause(adapter: String) -> String { "crm:{\(adapter)}:pause" }
    /// The adapter's calls on the wire (a CRM that caps concurrent calls, as Marketo's 10): member =
    /// the call's slot, score = when it is given up for lost (µs).
    public static func crmCalls(adapter: String) -> String { "crm:{\(adapter)}:calls" }
    /// Calls counted against the CRM's daily quota on `day` (yyyyMMdd in the quota's time zone).
    public static func crmDaily(adapter: String, day: String) -> String { "crm:{\(adapter)}:daily:\(day)" }
    /// What a CRM told us about itself, shared by every process (Eloqua: `base`, the instance's base
    /// URL from /id, and `fields`, contact field internal name -> id as JSON); expires after a day.
    public static func crmDiscovery(adapter: String) -> String { "crm:{\(adapter)}:discovery" }
    /// The adapter's bulk imports (Eloqua): field = the sync's uri, value = its progress as JSON.
    public static func crmBulk(adapter: String) -> String { "crm:{\(adapter)}:bulk" }
    /// Customers the CRM could not take (per-record errors, retries spent): adapter, customer, reason.
    public static let crmDeadLetters = "stream:crm:dlq"

    /// A client's event id from POST /api/v1/events -> the customer it was recorded for (7 days), so a
    /// redelivered event is recorded once.
    public static func apiEvent(_ id: String) -> String { "evt:\(id)" }

    /// A customer import job (hash: state, format, source, counters, chunks, chunksApplied, times).
    public static func customerImport(_ id: String) -> String { "imp:{\(id)}" }
    /// One spooled chunk of an import's checked rows (JSON), removed when applied.
    public static func customerImportChunk(_ id: String, _ index: Int) -> String { "imp:{\(id)}:c:\(index)" }
    /// The first rejected lines of an import (JSON {line, reason}), oldest first.
    public static func customerImportRejected(_ id: String) -> String { "imp:{\(id)}:rejected" }
    /// Which process is applying an import's chunks (value = the process).
    public static func customerImportLease(_ id: String) -> String { "imp:{\(id)}:lease" }
    /// Every import by creation time, and the ones still being received or applied.
    public static let customerImports = "imports"
    public static let activeCustomerImports = "imports:active"

    /// Set while a click (or open) of one message's link counts once: kind click|open, the link number.
    public static func engagementGuard(message: String, kind: String, index: Int) -> String {
        MessageId.key(message, prefix: "eng") + ":\(kind):\(index)"
    }

    /// Consumer group of the profile fetcher on `stream:inbound`.
    public static let enrichGroup = "enrich"

    /// One API key (hash: hash = SHA-256 of its secret, name, role, grants, createdAt, createdBy,
    /// expiresAt, lastUsedAt, revokedAt). The secret itself is never stored.
    public static func apiKey(_ id: String) -> String { "apikey:{\(id)}" }
    /// Every API key id by creation time.
    public static let apiKeys = "apikeys"
    /// One operator of the console (hash: password = scrypt hash, role, grants, createdAt, disabledAt).
    public static func operatorAccount(_ name: String) -> String { "operator:{\(name)}" }
    /// Every operator name by creation time.
    public static let operators = "operators"
    /// A signed-in operator's session, by the SHA-256 of its cookie (hash: operator, csrf, createdAt), expiring when idle.
    public static func operatorSession(_ tokenHash: String) -> String { "opsession:{\(tokenHash)}" }
    /// Failed sign-ins of one operator name, and from one address, in the current lockout window.
    public static func loginFailures(operator name: String) -> String { "login:fail:{\(name)}" }
    public static func loginAttempts(address: String) -> String { "login:addr:{\(address)}" }
    /// Who did what through the admin API: actor, role, method, route, targets, status, outcome, at.
    public static let auditStream = "stream:audit"
    /// A signed provider or CRM callback already applied (scope: `receipts:<adapter>`, `inbound:<adapter>`,
    /// `crm:<adapter>`; id: the SHA-256 of its signature), kept for the replay window.
    public static func webhookSeen(scope: String, id: String) -> String { "seen:{\(scope)}:\(id)" }
    /// A merge candidate (hash: customer, other, identity, source, actor, createdAt, state pending |
    /// accepted | rejected, decidedAt, decidedBy): two customers an unverified identity would have merged.
    public static func mergeCandidate(_ id: String) -> String { "mergecand:{\(id)}" }
    /// Pending candidates by creation time, and the candidate of a customer pair (ids sorted), which
    /// keeps a pair from being proposed twice.
    public static let pendingMergeCandidates = "mergecands:pending"
    /// Merges a cluster began as steps and has not finished (`<loser>|<survivor>` by when begun): what
    /// a sweeper completes after a crash between the steps.
    public static let pendingMerges = "merges:pending"
    /// An erasure (hash: customer, state erasing | purging | done, requestedBy, requestedAt, keys,
    /// progress of the stream purge, finishedAt; while purging also `needles`, the ids and identity
    /// values the purge looks for, removed when it is done).
    public static func erasure(_ id: String) -> String { "erasure:{\(id)}" }
    /// Erasures whose stream purge is not finished (by request time).
    public static let activeErasures = "erasures:active"
    /// The lease of the process purging streams for an erasure.
    public static func erasureLease(_ id: String) -> String { "erasure:{\(id)}:lease" }
    /// Customers (by our id) whose record this CRM adapter must delete: score = when to try (ms).
    public static func crmErase(adapter: String) -> String { "crm:{\(adapter)}:erase" }
    public static func mergeCandidatePair(_ a: String, _ b: String) -> String { a < b ? "mergecand:pair:{\(a):\(b)}" : "mergecand:pair:{\(b):\(a)}" }
}
