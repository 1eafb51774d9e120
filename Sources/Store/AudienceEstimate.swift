import Foundation

/// An audience size estimated from `checked` random members of a set of `setSize` (the audience's
/// smallest positive set), `hits` of whom are in the audience: the count scaled up, and its 95%
/// margin (normal approximation with the finite-population correction; with no hit, the rule of
/// three). Every member checked is an exact count with no margin.
public struct AudienceEstimate: Sendable, Equatable {
    public let hits: Int
    public let checked: Int
    public let setSize: Int
    public let sample: [String]

    public init(hits: Int, checked: Int, setSize: Int, sample: [String]) {
        self.hits = hits
        self.checked = checked
        self.setSize = setSize
        self.sample = sample
    }

    public var isExact: Bool { checked >= setSize }

    public var count: Int {
        guard !isExact, checked > 0 else { return hits }
        return Int((Double(setSize) * Double(hits) / Double(checked)).rounded())
    }

    /// Half the width of the 95% interval around `count`.
    public var margin: Int {
        guard !isExact, checked > 0 else { return 0 }
        let n = Double(checked), size = Double(setSize)
        if hits == 0 { return Int((size * 3 / n).rounded(.up)) }
        let p = Double(hits) / n
        let correction = (size - n) / (size - 1)
        return Int((1.96 * size * (p * (1 - p) / n * correction).squareRoot()).rounded(.up))
    }

    /// Exact, or a margin within a tenth of the count: worth showing as "about".
    public var isPreciseEnough: Bool { isExact || (hits > 0 && Double(margin) <= 0.1 * Double(count)) }
}
