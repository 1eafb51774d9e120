import GatewayCore
import Outbound

/// What each variant's content on each channel would say to one customer, and which variables the
/// customer lacks (a real send would skip them: `missing_variable`). Stores nothing.
public struct CampaignPreview: Sendable {
    public struct Channel: Sendable, Encodable {
        public let channel: String
        public let adapter: String
        public let account: String?
        public let template: String?
        public let subject: String?
        public let text: String?
        public let html: String?
        public let link: String?
        public let data: [String: String]?
        /// Variables the templates use outside a section that this customer has no value for.
        public let missing: [String]
    }

    public struct Variant: Sendable, Encodable {
        public let variant: String
        public let weight: Int
        public let channels: [Channel]
    }

    public let variants: [Variant]

    /// `hash` is the customer's record as stored (`profile.nickname`, `score`...).
    public init(_ campaign: CompiledCampaign, customerId: String, hash: [String: String]) {
        let context = CampaignPlanner.context(id: customerId, hash: hash)
        variants = campaign.definition.effectiveVariants.map { v in
            Variant(
                variant: v.name, weight: v.weight,
                channels: (campaign.contents[v.name] ?? []).map { c in
                    var missing = [String]()
                    func show(_ t: TextTemplate?) -> String? {
                        guard let t else { return nil }
                        missing += t.missing(context)
                        return t.renderLeniently(context)
                    }
                    let data = c.data.isEmpty ? nil : Dictionary(c.data.map { ($0.0, show($0.1) ?? "") }, uniquingKeysWith: { a, _ in a })
                    return Channel(
                        channel: c.channel, adapter: c.adapter, account: c.account, template: show(c.template), subject: show(c.subject), text: show(c.text),
                        html: show(c.html), link: show(c.link), data: data, missing: Array(Set(missing)).sorted())
                })
        }
    }
}
