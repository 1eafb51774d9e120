import Foundation

/// Conversion rates of a campaign's variants against its hold-out, and of the variants against each
/// other: the arithmetic of the report.
///
/// - Lift against the hold-out: the difference of the two rates with a 95% confidence interval
///   (normal approximation, unpooled standard error: `d ± 1.96 · √(p₁(1−p₁)/n₁ + p₂(1−p₂)/n₂)`), and
///   the relative lift `d / p_holdout`. Significant when the interval excludes 0.
/// - Variants: a two-proportion z-test (pooled standard error) of the best variant against the
///   runner-up; `|z| > 1.96` names the winner, else "not significant yet".
public enum Lift {
    public static let z95 = 1.959964

    public struct Group: Sendable, Equatable {
        public let name: String
        public let trials: Int
        public let successes: Int

        public init(name: String, trials: Int, successes: Int) {
            self.name = name
            self.trials = trials
            self.successes = successes
        }

        public var rate: Double { trials > 0 ? Double(successes) / Double(trials) : 0 }
    }

    public struct Difference: Sendable, Equatable {
        /// rate(a) - rate(b).
        public let absolute: Double
        /// absolute / rate(b); nil when rate(b) is 0.
        public let relative: Double?
        public let low: Double
        public let high: Double
        public var significant: Bool { low > 0 || high < 0 }
    }

    /// a against b (a variant against the hold-out); nil when either group is empty.
    public static func difference(_ a: Group, _ b: Group) -> Difference? {
        guard a.trials > 0, b.trials > 0 else { return nil }
        let d = a.rate - b.rate
        let se = (a.rate * (1 - a.rate) / Double(a.trials) + b.rate * (1 - b.rate) / Double(b.trials)).squareRoot()
        return Difference(absolute: d, relative: b.rate > 0 ? d / b.rate : nil, low: d - z95 * se, high: d + z95 * se)
    }

    /// The two-proportion z statistic of a against b (pooled); nil when it cannot be computed.
    public static func z(_ a: Group, _ b: Group) -> Double? {
        guard a.trials > 0, b.trials > 0 else { return nil }
        let pooled = Double(a.successes + b.successes) / Double(a.trials + b.trials)
        let se = (pooled * (1 - pooled) * (1 / Double(a.trials) + 1 / Double(b.trials))).squareRoot()
        guard se > 0 else { return nil }
        return (a.rate - b.rate) / se
    }

    /// The variant whose rate is significantly above every other's runner-up, or nil.
    public static func winner(_ variants: [Group]) -> String? {
        let ranked = variants.filter { $0.trials > 0 }.sorted { $0.rate > $1.rate }
        guard ranked.count >= 2, let z = z(ranked[0], ranked[1]), z > z95 else { return nil }
        return ranked[0].name
    }
}
