import Foundation
import GatewayCore
import GatewayCrypto
import Outbound
import RedisClient

/// Plans a running campaign: reads its audience snapshot a chunk at a time (SSCAN, so memory stays
/// bounded whatever the size), decides each recipient's variant and channel, renders the message and
/// queues it. A chunk's messages, counters and the checkpoint (the next cursor) are written by one
/// script that first checks the planner lease and that the checkpoint has not moved: a chunk is
/// applied once, however often planners crash and restart. Every message id is derived from
/// (campaign, customer), so the same recipient can never be queued twice.
public struct CampaignPlanner: Sendable {
    let redis: RedisPool

    public init(redis: RedisPool) { self.redis = redis }

    public enum ChunkResult: Sendable, Equatable {
        case planned(count: Int, done: Bool)
        /// Paused, cancelled or otherwise not running: stop planning.
        case stopped
        /// Another planner holds the lease or moved the checkpoint.
        case lostLease
    }

    /// The message id of a campaign's message to a customer.
    public static func messageId(campaign: Campaign, customer: String) -> String {
        ULID.make(milliseconds: campaign.createdAt, randomBits: Array(Digest.sha256(Array("\(campaign.id)/\(customer)".utf8)).prefix(10)))
    }

    /// One chunk of the snapshot read and turned into script arguments, not yet applied.
    public struct PreparedChunk: Sendable {
        public let cursor: String
        public let next: String
        public let count: Int
        let args: [String]
    }

    /// Reads the chunk at `cursor` (SSCAN) and its customers (one pipeline), and decides each recipient.
    public func prepare(_ c: Campaign, compiled: CompiledCampaign, cursor: String, owner: String, now: Int64, count: Int = 1000) async throws
        -> PreparedChunk
    {
        let scan = try await redis.send("SSCAN", Keys.campaignAudience(c.id), cursor, "COUNT", String(count)).array ?? []
        guard scan.count == 2, let next = scan[0].string else { throw RedisError(.server, command: "SSCAN", message: "unexpected reply (no audience snapshot?)") }
        let ids = scan[1].strings
        var commands = [[String]]()
        commands.reserveCapacity(ids.count * 2)
        for id in ids { commands += [["HGETALL", Keys.customer(id)], ["SMEMBERS", Keys.customerIdentities(id)]] }
        let replies = ids.isEmpty ? [] : try await redis.pipelineChecked(commands)

        var args = [owner, cursor, next, String(now)]
        args.reserveCapacity(ids.count * 48)
        for (i, id) in ids.enumerated() {
            let hash = replies[2 * i].dictionary
            let identities = replies[2 * i + 1].strings.compactMap(Identity.init(storageForm:))
            args += record(c, compiled: compiled, customer: id, hash: hash, identities: identities, now: now)
        }
        args.append(String(MessageStore.customerIndexTTLMs))
        return PreparedChunk(cursor: cursor, next: next, count: ids.count, args: args)
    }

    /// Writes a prepared chunk: applied only if this planner still holds the lease and the
    /// checkpoint is still the chunk's cursor.
    public func apply(_ c: Campaign, _ chunk: PreparedChunk) async throws -> ChunkResult {
        let r = try await redis.eval(Self.script, keys: [Keys.campaign(c.id), Keys.campaignStats(c.id), Keys.campaignPlanner(c.id)], args: chunk.args)
            .array ?? []
        switch r.first?.string {
        case "ok": return .planned(count: chunk.count, done: chunk.next == "0")
        case "stopped": return .stopped
        default: return .lostLease
        }
    }

    /// One recipient as script arguments: kind (q queue, s skip, h hold-out, w WeCom group send),
    /// variant, channel, then for q: message id, stream, the customer's message index, field count,
    /// fields; for s: the reason; for h: the customer; for w: the campaign's groups, the group's
    /// recipients, the group, the external contact id, the customer.
    func record(_ c: Campaign, compiled: CompiledCampaign, customer id: String, hash: [String: String], identities: [Identity], now: Int64) -> [String] {
        guard hash["createdAt"] != nil, hash["mergedInto"] == nil else { return ["s", "", "", "customer_gone"] }
        guard let variant = c.definition.variant(campaign: c.id, customer: id) else { return ["h", "", "", id] }
        let contents = compiled.contents[variant.name] ?? []
        switch message(c, compiled: compiled, variant: variant.name, contents: contents[...], customer: id, hash: hash, identities: identities, createdAt: now)
        {
        case .send(let m):
            let fields = m.fields
            return [
                "q", variant.name, m.channel, m.id, Keys.outboundStream(channel: m.channel, lane: m.lane), Keys.customerMessages(id), String(fields.count * 2),
            ]
                + fields.flatMap { [$0.0, $0.1] }
        case .none(let channel, let reason):
            return ["s", variant.name, channel, reason]
        case .group(let owner, let external):
            let group = WeComGroupSend.group(variant: variant.name, owner: owner)
            return ["w", variant.name, WeComGroupSend.channel, Keys.campaignWeComGroups(c.id), Keys.campaignWeComRecipients(c.id, group: group), group, external, id]
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
    /// and that renders with their data; the next one is tried when one does not. Used at planning and
    /// again at send time, when a send fails for a recipient reason (`CampaignFallback`, which keeps
    /// the planned `messageId`).
    func message(
        _ c: Campaign, compiled: CompiledCampaign, variant: String, contents: ArraySlice<CompiledCampaign.Content>, customer id: String,
        hash: [String: String], identities: [Identity], createdAt: Int64, messageId: String? = nil
    ) -> Choice {
        let source = MessageSource(
            kind: "campaign", id: c.id, transactional: c.definition.transactional == true, campaign: c.id, variant: variant, expiresAt: c.expiresAt,
            requireOptIn: compiled.requireOptIn, linkTokens: compiled.linkTokens)
        return Self.message(
            source, contents: contents, customer: id, hash: hash, identities: identities, createdAt: createdAt,
            messageId: messageId ?? Self.messageId(campaign: c, customer: id))
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

    // KEYS: campaign, stats, planner lease. ARGV: owner, expected cursor, next cursor, now, then
    // records, then how long a customer's message index is kept (ms).
    static let script = RedisScript(
        name: "campaign_plan_chunk",
        source: #"""
            if redis.call('GET', KEYS[3]) ~= ARGV[1] then return { 'lease' } end
            local c = redis.call('HMGET', KEYS[1], 'state', 'cursor', 'planDone')
            if c[1] ~= 'running' then return { 'stopped' } end
            if c[2] ~= ARGV[2] or c[3] == '1' then return { 'lease' } end
            local counts = {}
            local function add(metric, variant, channel)
              counts[metric] = (counts[metric] or 0) + 1
              if variant ~= '' then local k = 'v:' .. variant .. ':' .. metric; counts[k] = (counts[k] or 0) + 1 end
              if channel ~= '' then local k = 'ch:' .. channel .. ':' .. metric; counts[k] = (counts[k] or 0) + 1 end
            end
            local i = 5
            while i < #ARGV do
              local kind, variant, channel = ARGV[i], ARGV[i + 1], ARGV[i + 2]
              add('planned', variant, channel)
              if kind == 'q' then
                local id, stream, index, nf = ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], tonumber(ARGV[i + 6])
                local key = 'msg:{' .. id .. '}'
                if redis.call('EXISTS', key) == 0 then
                  redis.call('HSET', key, unpack(ARGV, i + 7, i + 6 + nf))
                  redis.call('XADD', stream, '*', 'id', id)
                  redis.call('ZADD', index, ARGV[4], id)
                  redis.call('PEXPIRE', index, ARGV[#ARGV])
                  add('queued', variant, channel)
                  add('open', variant, channel)
                end
                i = i + 7 + nf
              elseif kind == 'w' then
                -- A WeCom group-send recipient: into its owner's group (sent later, one task per group).
                redis.call('SADD', ARGV[i + 3], ARGV[i + 5])
                if redis.call('HSETNX', ARGV[i + 4], ARGV[i + 6], ARGV[i + 7]) == 1 then
                  add('queued', variant, channel)
                  add('open', variant, channel)
                end
                i = i + 8
              elseif kind == 's' then
                add('skipped', variant, channel)
                local k = 'skip:' .. ARGV[i + 3]
                counts[k] = (counts[k] or 0) + 1
                i = i + 4
              else
                add('holdout', variant, '')
                -- A hold-out member's exposure starts now: its goal events count against the campaign's.
                -- (Key derived here like the message keys above; the planner moves to the Functions library later.)
                local campaign = string.match(KEYS[1], '^camp:{(.*)}$')
                redis.call('HSETNX', 'cust:{' .. ARGV[i + 3] .. '}:camps', campaign, ARGV[4] .. '|holdout')
                i = i + 4
              end
            end
            for k, v in pairs(counts) do redis.call('HINCRBY', KEYS[2], k, v) end
            redis.call('HSET', KEYS[1], 'cursor', ARGV[3])
            if ARGV[3] == '0' then redis.call('HSET', KEYS[1], 'planDone', '1') end
            redis.call('PEXPIRE', KEYS[3], 15000)
            return { 'ok' }
            """#)
}
