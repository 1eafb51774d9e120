import Foundation
import GatewayCore
import GatewayCrypto
import Outbound
import RedisClient
import Store

/// Plans a running campaign: reads its audience snapshot a chunk at a time (SSCAN, so memory stays
/// bounded whatever the size), decides each recipient's variant and queues a reference to them
/// (rendered when sent). A chunk's references, counters and the checkpoint (the next cursor) are
/// written by one function (`campaign_plan_chunk`) that first checks the planner lease and that the
/// checkpoint has not moved: a chunk is applied once, however often planners crash and restart.
/// Every message id is derived from (campaign, customer), so the same recipient is sent at most one
/// message (a repeated reference is dropped when it is made a message).
public struct CampaignPlanner: Sendable {
    let store: CampaignStore

    /// Where message keys go (`MessageId`).
    let layout: IndexLayout
    /// How the send queues are partitioned: a reference goes to its message's partition.
    let streams: StreamPartitions

    public init(redis: RedisPool) {
        store = CampaignStore(redis: redis)
        layout = redis.isCluster ? .perSlot : .single
        streams = redis.streams
    }

    public enum ChunkResult: Sendable, Equatable {
        case planned(count: Int, done: Bool)
        /// Paused, cancelled or otherwise not running: stop planning.
        case stopped
        /// Another planner holds the lease or moved the checkpoint.
        case lostLease
    }

    /// The message id of a campaign's message to a customer.
    public static func messageId(campaign: Campaign, customer: String, layout: IndexLayout) -> String {
        let ulid = ULID.make(milliseconds: campaign.createdAt, randomBits: Array(Digest.sha256(Array("\(campaign.id)/\(customer)".utf8)).prefix(10)))
        return MessageId.make(ulid, recipient: customer, layout: layout)
    }

    /// One chunk of the snapshot read and decided, not yet applied.
    public struct PreparedChunk: Sendable {
        public let cursor: String
        public let next: String
        public let count: Int
        let owner: String
        let now: Int64
        let records: [Record]
    }

    /// What planning does with one recipient.
    enum Record: Sendable {
        /// A reference to send, on its channel's stream.
        case reference(variant: String, channel: String, messageId: String, customer: String, stream: String)
        case skip(variant: String, channel: String, reason: String)
        /// A hold-out member: its exposure starts now (a customer gone since the snapshot is skipped).
        case holdout(variant: String, customer: String)
        /// A member of its owner's WeCom group send.
        case group(variant: String, group: String, external: String, customer: String)
    }

    /// Reads the chunk at `cursor` and decides each recipient's variant. A recipient is queued as a
    /// reference to the variant's first channel: channel, address and content are decided when it is
    /// sent, with the customer as they are then (`CampaignRenderer.materialize`). Only a campaign with
    /// a WeCom group send reads its customers here, since its owners' tasks are built now.
    public func prepare(_ c: Campaign, compiled: CompiledCampaign, cursor: String, owner: String, now: Int64, count: Int = 1000) async throws
        -> PreparedChunk
    {
        let (next, ids) = try await store.audienceChunk(c.id, snapshot: c.snapshot, cursor: cursor, count: count)
        let recipients = compiled.hasGroupSend ? try await store.recipients(ids) : nil
        let records = ids.enumerated().map { i, id in record(c, compiled: compiled, customer: id, recipient: recipients?[i]) }
        return PreparedChunk(cursor: cursor, next: next, count: ids.count, owner: owner, now: now, records: records)
    }

    /// Writes a prepared chunk: applied only if this planner still holds the lease and the checkpoint
    /// is still the chunk's cursor. On a single Redis one function call (`campaign_plan_chunk`); on a
    /// cluster the references (per stream, once per chunk) and the hold-out exposures (per customer)
    /// are written in their own slots first, then the chunk is counted and the checkpoint moved.
    public func apply(_ c: Campaign, _ chunk: PreparedChunk) async throws -> ChunkResult {
        var keys = [Keys.campaign(c.id), Keys.campaignStats(c.id), Keys.campaignPlanner(c.id)]
        var args = [chunk.owner, chunk.cursor, chunk.next, String(chunk.now), c.id]
        func groupKeys(_ group: String) -> [String] { [Keys.campaignWeComGroups(c.id), Keys.campaignWeComRecipients(c.id, group: group)] }
        if store.isCluster {
            guard try await store.planning(c.id, owner: chunk.owner, cursor: chunk.cursor) else { return .lostLease }
            args += try await writeOwnSlots(c, chunk)
            for case .group(_, let group, _, _) in chunk.records { keys += groupKeys(group) }
        } else {
            for r in chunk.records {
                switch r {
                case .reference(let v, let channel, let messageId, let customer, let stream):
                    keys.append(stream)
                    args += ["r", v, channel, messageId, customer]
                case .skip(let v, let channel, let reason): args += ["s", v, channel, reason]
                case .holdout(let v, let customer):
                    keys += [Keys.customerCampaigns(customer), Keys.customer(customer)]
                    args += ["h", v]
                case .group(let v, let group, let external, let customer):
                    keys += groupKeys(group)
                    args += ["w", v, group, external, customer]
                }
            }
        }
        switch try await store.planChunk(keys: keys, args: args) {
        case "ok": return .planned(count: chunk.count, done: chunk.next == "0")
        case "stopped": return .stopped
        default: return .lostLease
        }
    }

    /// A cluster's chunk: its references appended per stream (`campaign_plan_refs`, once per chunk and
    /// stream) and its hold-outs' exposures recorded (`campaign_holdout`); returns the records as
    /// `campaign_plan_chunk` counts them then (R, H, s, w).
    private func writeOwnSlots(_ c: Campaign, _ chunk: PreparedChunk) async throws -> [String] {
        var streams = [String: [String]]()
        var order = [String]()
        var holdouts = [String]()
        for r in chunk.records {
            if case .reference(let v, let channel, let messageId, let customer, let stream) = r {
                if streams[stream] == nil { order.append(stream) }
                streams[stream, default: []] += [messageId, v, customer, channel]
            } else if case .holdout(_, let customer) = r {
                holdouts.append(customer)
            }
        }
        try await store.appendReferences(campaign: c.id, cursor: chunk.cursor, now: chunk.now, byStream: order.map { ($0, streams[$0]!) })
        let live = try await store.recordHoldouts(campaign: c.id, now: chunk.now, customers: holdouts)
        var held = live.makeIterator()
        var args = [String]()
        for r in chunk.records {
            switch r {
            case .reference(let v, let channel, let messageId, let customer, _): args += ["R", v, channel, messageId, customer]
            case .skip(let v, let channel, let reason): args += ["s", v, channel, reason]
            case .holdout(let v, _): args += held.next() == true ? ["H", v] : ["s", v, "", "customer_gone"]
            case .group(let v, let group, let external, let customer): args += ["w", v, group, external, customer]
            }
        }
        return args
    }

    /// What planning does with one recipient. `recipient` is read only for a campaign with a group send.
    func record(_ c: Campaign, compiled: CompiledCampaign, customer id: String, recipient: (hash: [String: String], identities: [Identity])?) -> Record {
        if let hash = recipient?.hash, hash["createdAt"] == nil || hash["mergedInto"] != nil {
            return .skip(variant: "", channel: "", reason: "customer_gone")
        }
        guard let variant = c.definition.variant(campaign: c.id, customer: id) else {
            // The function skips a customer who is gone (record missing or merged) instead.
            return .holdout(variant: "", customer: id)
        }
        let contents = compiled.contents[variant.name] ?? []
        let lane: OutboundMessage.Lane = c.definition.transactional == true ? .transactional : .bulk
        func reference(_ channel: String) -> Record {
            let messageId = Self.messageId(campaign: c, customer: id, layout: layout)
            return .reference(
                variant: variant.name, channel: channel, messageId: messageId, customer: id,
                stream: streams.outbound(channel: channel, lane: lane, message: messageId))
        }
        guard let recipient else { return reference(contents.first?.channel ?? "") }
        switch message(
            c, compiled: compiled, variant: variant.name, contents: contents[...], customer: id, hash: recipient.hash, identities: recipient.identities,
            createdAt: 0)
        {
        case .send(let m): return reference(m.channel)
        case .none(let channel, let reason): return .skip(variant: variant.name, channel: channel, reason: reason)
        case .group(let owner, let external):
            return .group(variant: variant.name, group: WeComGroupSend.group(variant: variant.name, owner: owner), external: external, customer: id)
        }
    }

    public enum Choice: Sendable {
        /// The message for the first channel (in the campaign's order) the recipient may get.
        case send(OutboundMessage)
        /// No channel: a variable missing (with its channel), else the one refusal, else `no_eligible_channel`.
        case none(channel: String, reason: String)
        /// The campaign's WeCom group send: the recipient joins their owner's task.
        case group(owner: String, externalUserId: String)
    }

    /// The recipient's message on the first of `contents` that they may get (consent, address, opt-in)
    /// and that renders with their data; the next one is tried when one does not. Used at send time
    /// (`CampaignRenderer`: a reference made a message, and the fallback when a send fails for a
    /// recipient reason, which keeps the `messageId`), and at planning for group-send campaigns.
    func message(
        _ c: Campaign, compiled: CompiledCampaign, variant: String, contents: ArraySlice<CompiledCampaign.Content>, customer id: String,
        hash: [String: String], identities: [Identity], createdAt: Int64, messageId: String? = nil
    ) -> Choice {
        let source = MessageSource(
            kind: "campaign", id: c.id, transactional: c.definition.transactional == true, campaign: c.id, variant: variant, expiresAt: c.expiresAt,
            requireOptIn: compiled.requireOptIn, linkTokens: compiled.linkTokens)
        return Self.message(
            source, contents: contents, customer: id, hash: hash, identities: identities, createdAt: createdAt,
            messageId: messageId ?? Self.messageId(campaign: c, customer: id, layout: layout))
    }

    /// Who sends a message rendered from channel contents: a campaign (its variant), or a journey step.
    struct MessageSource {
        /// `campaign` or `journey:<version>:<step>`: with `id`, the idempotency key's prefix.
        let kind: String
        let id: String
        let transactional: Bool
        let campaign: String?
        let variant: String?
        let expiresAt: Int64?
        let requireOptIn: Set<String>
        let linkTokens: LinkTokens?
    }

    /// The message on the first of `contents` the recipient may get and that renders with their data.
    static func message(
        _ source: MessageSource, contents: ArraySlice<CompiledCampaign.Content>, customer id: String, hash: [String: String], identities: [Identity],
        createdAt: Int64, messageId: String
    ) -> Choice {
        let transactional = source.transactional
        let consent = ConsentRecord.all(in: hash)
        var refusals = [(channel: String, reason: String)]()
        for content in contents {
            let decision = SendEligibility.decide(
                channel: content.channel, account: content.account, to: nil, transactional: transactional, identities: identities, consent: consent,
                requireOptIn: source.requireOptIn)
            guard case .send(let address) = decision else {
                if case .skip(let reason) = decision { refusals.append((content.channel, reason)) }
                continue
            }
            if content.isGroupSend {
                // The task goes out from the customer's owner (a WeCom member's userid).
                guard let owner = hash["owner"], !owner.isEmpty else {
                    refusals.append((content.channel, "no_wecom_owner"))
                    continue
                }
                return .group(owner: owner, externalUserId: address)
            }
            do {
                let rendered = try render(content, context: Self.context(id: id, hash: hash))
                let lane: OutboundMessage.Lane = transactional ? .transactional : .bulk
                var m = OutboundMessage(
                    id: messageId, channel: content.channel, adapter: content.adapter, lane: lane,
                    idempotencyKey: "\(source.kind):\(source.id):\(id):\(content.channel)", customerId: id, to: nil, account: content.account,
                    template: rendered.template, subject: rendered.subject, text: rendered.text, html: rendered.html, link: rendered.link,
                    variables: rendered.variables, createdAt: createdAt)
                m.content = content.richContent
                m.campaign = source.campaign
                m.variant = source.variant
                m.expiresAt = source.expiresAt
                if let tokens = source.linkTokens { Self.track(&m, tokens: tokens) }
                return .send(m)
            } catch let e as RenderError {
                if case .missingVariable(let name) = e { refusals.append((content.channel, "missing_variable:\(name)")) } else {
                    refusals.append((content.channel, "render_failed"))
                }
            } catch {
                refusals.append((content.channel, "render_failed"))
            }
        }
        // The most useful reason: data the marketer can fix (a variable missing) before a single refusal.
        if let r = refusals.first(where: { $0.reason.hasPrefix("missing_variable:") || $0.reason == "render_failed" }) {
            return .none(channel: r.channel, reason: r.reason)
        }
        return refusals.count == 1 ? .none(channel: "", reason: refusals[0].reason) : .none(channel: "", reason: "no_eligible_channel")
    }

    /// Rewrites the message's links to tracked ones (keeping the originals in `links`) and gives an
    /// email an open pixel.
    static func track(_ m: inout OutboundMessage, tokens: LinkTokens) {
        let base = tokens.publicURL
        var rewriter = LinkRewriter(skip: ["\(base)/l/", "\(base)/o/", "\(base)/u/"])
        let id = m.id
        let tracked = { (n: Int) in tokens.clickURL(messageId: id, index: n) }
        if let link = m.link { m.link = rewriter.rewriteURL(link, tracked) }
        if let text = m.text { m.text = rewriter.rewriteText(text, tracked) }
        if var html = m.html {
            html = rewriter.rewriteHTML(html, tracked)
            if m.channel == "email", let pixel = tokens.openURL(messageId: id) {
                let img = "<img src=\"\(pixel)\" width=\"1\" height=\"1\" alt=\"\" style=\"display:none\">"
                if let body = html.range(of: "</body>", options: [.caseInsensitive, .backwards]) {
                    html.insert(contentsOf: img, at: body.lowerBound)
                } else {
                    html += img
                }
            }
            m.html = html
        }
        m.links = rewriter.urls
    }

    struct Rendered {
        var template, subject, text, html, link: String?
        var variables: String
    }

    static func render(_ c: CompiledCampaign.Content, context: [String: Any]) throws -> Rendered {
        var vars = [(String, String)]()
        for (k, t) in c.data { vars.append((k, JSONText.quote(try t.render(context)))) }
        return Rendered(
            template: try c.template?.render(context), subject: try c.subject?.render(context), text: try c.text?.render(context),
            html: try c.html?.render(context), link: try c.link?.render(context), variables: JSONText.object(vars))
    }

    /// The customer as template variables: `id`, and each hash field split at its first dot
    /// (`profile.nickname` -> profile -> nickname).
    static func context(id: String, hash: [String: String]) -> [String: Any] {
        var ctx: [String: Any] = ["id": id]
        var nested = [String: [String: String]]()
        for (k, v) in hash {
            if let dot = k.firstIndex(of: ".") {
                nested[String(k[..<dot]), default: [:]][String(k[k.index(after: dot)...])] = v
            } else {
                ctx[k] = v
            }
        }
        for (k, v) in nested { ctx[k] = v }
        return ctx
    }
}
