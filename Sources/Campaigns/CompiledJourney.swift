import GatewayCore
import Outbound

/// A journey definition checked against the gateway: its shape (`JourneyPlan`), and each send step's
/// channels compiled as campaign channels are (adapters, accounts, templates). Building one is the
/// validation: every problem is a `JourneyError` naming the field.
public struct CompiledJourney: Sendable {
    public let plan: JourneyPlan
    /// Step index -> its channels, in fallback order.
    let sends: [Int: [CompiledCampaign.Content]]
    /// Journeys track their messages' links (and email opens) when a link secret is configured: a
    /// branch on `clicked` or `opened` needs it.
    let linkTokens: LinkTokens?
    /// Parsed audience and attribute conditions of branches (step index -> expression), and the
    /// audience trigger's.
    let conditions: [Int: TagExpression]
    public let audience: TagExpression?

    public init(_ d: JourneyDefinition, config: GatewayConfig, catalog: AdapterCatalog) throws {
        plan = try JourneyPlan(d, attributes: config.customers.attributes)
        linkTokens = LinkTokens(config.outbound)
        var sends = [Int: [CompiledCampaign.Content]]()
        var conditions = [Int: TagExpression]()
        for (i, step) in d.steps.enumerated() {
            if let send = step.send {
                var seen = Set<String>()
                sends[i] = try send.channels.enumerated().map { j, c in
                    let path = "steps[\(i)].send.channels[\(j)]"
                    guard seen.insert(c.channel).inserted else { throw JourneyError(path + ".channel", "\(c.channel) appears twice") }
                    guard c.channel != WeComGroupSend.channel else {
                        throw JourneyError(path + ".channel", "wecom is a campaign channel (a group-send task per owner), not a journey step's")
                    }
                    do { return try CompiledCampaign.compile(c, at: path, config: config, catalog: catalog) } catch let e as CampaignError {
                        throw JourneyError(e.field, e.reason, code: e.code)
                    }
                }
            }
            if let c = step.branch?.if {
                if let field = c.clicked != nil ? "clicked" : c.opened != nil ? "opened" : nil, linkTokens == nil {
                    throw JourneyError(
                        "steps[\(i)].branch.if.\(field)", "needs tracked links: set outbound.linkSecret (SCRM_LINK_SECRET) and outbound.publicURL",
                        code: "links_not_tracked")
                }
                if let text = c.audience ?? c.attribute {
                    let e = try TagExpression.parse(text)
                    try Self.checkFields(e, at: "steps[\(i)].branch.if", config: config)
                    conditions[i] = e
                }
            }
        }
        if let text = d.trigger.audience {
            let e = try TagExpression.parse(text)
            try Self.checkFields(e, at: "trigger.audience", config: config)
            audience = e
        } else {
            audience = nil
        }
        self.sends = sends
        self.conditions = conditions
    }

    static func checkFields(_ e: TagExpression, at path: String, config: GatewayConfig) throws {
        do { try CompiledCampaign.checkFields(e, config: config) } catch let e as CampaignError {
            throw JourneyError(path, e.reason, code: e.code)
        }
    }
}
