import Campaigns
import Foundation
import GatewayCore
import HTTPAPI
import Store

/// A campaign with its progress (`GET /campaigns/{id}`, the list, the lifecycle calls). Times are
/// ISO 8601 (seconds); times not reached yet are null.
struct CampaignView: Encodable {
    let id: String
    let name: String
    let state: String
    let audience: String
    @Null var audienceSize: Int?
    let createdAt: String
    @Null var startAt: String?
    @Null var expiresAt: String?
    @Null var startedAt: String?
    @Null var endedAt: String?
    let progress: Progress
    /// The definition as submitted.
    let definition: JSONValue

    /// Every counter of `CampaignStats.metrics`, then how far it is and how fast it goes.
    struct Progress: Encodable {
        let counters: [String: Int]
        let percent: Double
        let ratePerSecond: Double
        let etaSeconds: Int?

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: AnyKey.self)
            for (k, v) in counters { try c.encode(v, forKey: AnyKey(k)) }
            try c.encode(percent, forKey: AnyKey("percent"))
            try c.encode(ratePerSecond, forKey: AnyKey("ratePerSecond"))
            try c.encode(etaSeconds, forKey: AnyKey("etaSeconds"))
        }
    }

    init(_ c: Campaign, stats: CampaignStats, ratePerSecond rate: Double) {
        id = c.id
        name = c.definition.name
        state = c.state.rawValue
        audience = c.definition.audience
        audienceSize = c.audienceSize
        createdAt = Self.time(c.createdAt)
        startAt = c.startAt.map(Self.time)
        expiresAt = c.expiresAt.map(Self.time)
        startedAt = c.startedAt.map(Self.time)
        endedAt = c.endedAt.map(Self.time)
        let remaining = max(0, (c.audienceSize ?? 0) - stats["planned"]) + max(0, stats["open"])
        let done = stats["sent"] + stats["failed"] + stats["skipped"] + stats["holdout"]
        let percent = (c.audienceSize ?? 0) > 0 ? min(100, Double(done) * 100 / Double(c.audienceSize!)) : (c.state == .completed ? 100 : 0)
        progress = Progress(
            counters: Dictionary(uniqueKeysWithValues: CampaignStats.metrics.map { ($0, stats[$0]) }), percent: (percent * 10).rounded() / 10,
            ratePerSecond: (rate * 10).rounded() / 10, etaSeconds: rate > 0 ? Int((Double(remaining) / rate).rounded(.up)) : nil)
        definition = JSONValue.parse(Array(c.definitionJSON.utf8)) ?? .null
    }

    static func time(_ ms: Int64) -> String { ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(ms) / 1000)) }
}

/// `GET /campaigns`: newest first, a page at a time.
struct CampaignList: Encodable {
    let campaigns: [CampaignView]
    let next: String?
}

/// `GET /campaigns/{id}/report`: the counters overall, per variant, per channel and per reason, the
/// conversions against the hold-out, and what went out by WeChat mass send and WeCom group send.
struct CampaignReportView: Encodable {
    let id: String
    let name: String
    let state: String
    @Null var audienceSize: Int?
    let totals: [String: Int]
    let variants: [String: [String: Int]]
    let channels: [String: [String: Int]]
    let skipped: [String: Int]
    let failed: [String: Int]
    let fellBackTo: [String: Int]
    let fellBackReasons: [String: Int]
    let notes: [String]
    let conversions: ConversionReport
    /// Mass sends made for the campaign, with WeChat's counts once MASSSENDJOBFINISH came.
    let massSends: [MassSendRoutes.View]
    /// The WeCom channel's group-send tasks (one per owner and 10,000 recipients) and their results.
    let wecomTasks: [WeComTaskView]

    init(_ c: Campaign, stats s: CampaignStats, massSends: [MassSendRoutes.View], wecomTasks: [WeComTaskView]) {
        func all(_ g: [String: [String: Int]]) -> [String: [String: Int]] {
            g.mapValues { m in Dictionary(uniqueKeysWithValues: CampaignStats.metrics.map { ($0, m[$0] ?? 0) }) }
        }
        id = c.id
        name = c.definition.name
        state = c.state.rawValue
        audienceSize = c.audienceSize
        totals = Dictionary(uniqueKeysWithValues: CampaignStats.metrics.map { ($0, s[$0]) })
        variants = all(s.variants)
        channels = all(s.channels)
        skipped = s.skipped
        failed = s.failed
        fellBackTo = s.fellBackTo
        fellBackReasons = s.fellBackReasons
        notes = ["opens are approximate: mail clients that block images are not counted, and privacy proxies open every message"]
        conversions = ConversionReport(c, stats: s)
        self.massSends = massSends
        self.wecomTasks = wecomTasks
    }
}

/// A coding key from a string (maps whose keys are data).
struct AnyKey: CodingKey {
    let stringValue: String
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    var intValue: Int? { nil }
    init?(intValue: Int) { nil }
}
