import Campaigns
import Foundation
import GatewayCore
import Store

/// The report's conversion section: per variant and for the hold-out, sent, delivered, clicked,
/// converted and the conversion rate (converted / sent; hold-out: converted / held out), each
/// variant's lift against the hold-out with its 95% interval, and the winner between variants when
/// the difference is significant.
struct ConversionReport: Encodable {
    struct VariantRow: Encodable {
        let name: String
        let sent: Int
        let delivered: Int
        let clicked: Int
        let converted: Int
        let conversionRate: Double
        let liftVsHoldout: LiftView?
    }

    struct LiftView: Encodable {
        /// Variant rate minus hold-out rate.
        let absolute: Double
        /// absolute / hold-out rate (nil when the hold-out converted nobody).
        let relative: Double?
        let ci95: [Double]
        let significant: Bool
    }

    struct HoldoutRow: Encodable {
        let size: Int
        let converted: Int
        let conversionRate: Double
    }

    let goal: CampaignDefinition.Goal?
    let variants: [VariantRow]
    let holdout: HoldoutRow
    /// The variant that converts significantly better than the others, if one does.
    let winner: String?
    let verdict: String

    init(_ c: Campaign, stats s: CampaignStats) {
        goal = c.definition.goal
        let holdoutGroup = Lift.Group(name: "holdout", trials: s["holdout"], successes: s["holdoutConverted"])
        holdout = HoldoutRow(size: holdoutGroup.trials, converted: holdoutGroup.successes, conversionRate: Self.round(holdoutGroup.rate))
        let names = c.definition.effectiveVariants.map(\.name)
        let groups = names.map { Lift.Group(name: $0, trials: s.variants[$0]?["sent"] ?? 0, successes: s.variants[$0]?["converted"] ?? 0) }
        variants = groups.map { g in
            let lift = Lift.difference(g, holdoutGroup).map {
                LiftView(absolute: Self.round($0.absolute), relative: $0.relative.map(Self.round), ci95: [Self.round($0.low), Self.round($0.high)], significant: $0.significant)
            }
            let v = s.variants[g.name] ?? [:]
            return VariantRow(
                name: g.name, sent: g.trials, delivered: v["delivered"] ?? 0, clicked: v["clicked"] ?? 0, converted: g.successes,
                conversionRate: Self.round(g.rate), liftVsHoldout: lift)
        }
        winner = groups.count > 1 ? Lift.winner(groups) : nil
        if goal == nil {
            verdict = "no goal: give the campaign goal: {event, withinHours} to count conversions"
        } else if let winner {
            verdict = "\(winner) converts significantly better (95%)"
        } else {
            verdict = groups.count > 1 ? "not significant yet" : "one variant: see its lift against the hold-out"
        }
    }

    static func round(_ x: Double) -> Double { (x * 1_000_000).rounded() / 1_000_000 }
}
