import GatewayCore
import Outbound

/// A journey definition checked against the gateway: its shape (`JourneyPlan`), and each send step's
/// channels compiled as campaign channels are (adapters, accounts, templates). Building one is the
/// validation: every problem is a `JourneyError` naming the field.
public struct CompiledJourney: Sendable {
    public let plan: JourneyPlan
    /// Step index -> its channels, in fallback order.
    let sends: [Int: [CompiledCampaign.Content]]

    public init(_ d: JourneyDefinition, config: GatewayConfig, catalog: AdapterCatalog) throws {
        plan = try JourneyPlan(d, attributes: config.customers.attributes)
        // Parts of the definition the runner does not run yet: refused rather than ignored.
        let later = "is not supported by this gateway version yet"
        for (field, given) in [("tagAdded", d.trigger.tagAdded), ("stage", d.trigger.stage), ("audience", d.trigger.audience)] where given != nil {
            throw JourneyError("trigger.\(field)", "\(later) (event triggers are)", code: "unsupported")
        }
        for (i, step) in d.steps.enumerated() {
            if step.update != nil { throw JourneyError("steps[\(i)].update", later, code: "unsupported") }
            if step.crm != nil { throw JourneyError("steps[\(i)].crm", later, code: "unsupported") }
            if let c = step.branch?.if, c.audience != nil || c.attribute != nil {
                throw JourneyError("steps[\(i)].branch.if", "\(c.audience != nil ? "audience" : "attribute") \(later) (clicked, opened, delivered and event are)", code: "unsupported")
            }
        }
        var sends = [Int: [CompiledCampaign.Content]]()
        for (i, step) in d.steps.enumerated() {
            if let send = step.send {
                var seen = Set<String>()
                sends[i] = try send.channels.enumerated().map { j, c in
                    let path = "steps[\(i)].send.channels[\(j)]"
                    guard seen.insert(c.channel).inserted else { throw JourneyError(path + ".channel", "\(c.channel) appears twice") }
                    do { return try CompiledCampaign.compile(c, at: path, config: config, catalog: catalog) } catch let e as CampaignError {
                        throw JourneyError(e.field, e.reason, code: e.code)
                    }
                }
            }
        }
        self.sends = sends
    }
}
