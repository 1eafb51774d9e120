import XCTest

@testable import GatewayCore

final class TagExpressionCostTests: XCTestCase {
    /// The set of `universe` an expression of tags selects, evaluated directly.
    static func select(_ e: TagExpression, _ tags: [String: Set<Int>], _ universe: Set<Int>) -> Set<Int> {
        switch e {
        case .tag(let t): return tags[t] ?? []
        case .not(let x): return universe.subtracting(select(x, tags, universe))
        case .and(let es): return es.reduce(universe) { $0.intersection(select($1, tags, universe)) }
        case .or(let es): return es.reduce(into: Set<Int>()) { $0.formUnion(select($1, tags, universe)) }
        default: return []
        }
    }

    func test_normalized_selectsTheSameCustomers_forRandomExpressions() throws {
        var rng = SystemRandomNumberGenerator()
        let universe = Set(0..<64)
        let names = ["a", "b", "c", "d", "e"]
        var tags = [String: Set<Int>]()
        for n in names { tags[n] = Set(universe.filter { _ in Bool.random(using: &rng) }) }
        func random(_ depth: Int) -> TagExpression {
            if depth == 0 || Int.random(in: 0..<4, using: &rng) == 0 { return .tag(names.randomElement(using: &rng)!) }
            switch Int.random(in: 0..<3, using: &rng) {
            case 0: return .not(random(depth - 1))
            case 1: return .and((0..<Int.random(in: 2...3, using: &rng)).map { _ in random(depth - 1) })
            default: return .or((0..<Int.random(in: 2...3, using: &rng)).map { _ in random(depth - 1) })
            }
        }
        for _ in 0..<3000 {
            let e = random(4)
            XCTAssertEqual(Self.select(e.normalized, tags, universe), Self.select(e, tags, universe), "\(e) vs \(e.normalized)")
            XCTAssertLessThanOrEqual(e.normalized.scans, Self.naiveScans(e), "normalizing never costs more: \(e)")
        }
    }

    /// Passes the expression would take compiled as written.
    static func naiveScans(_ e: TagExpression) -> Int { e.scans }

    func test_cost_negationsAreOnePassWherePossible_andTheLimitsNameWhatIsOver() throws {
        let manyNots = try TagExpression.parse((1...20).map { "!t\($0)" }.joined(separator: " | "))
        XCTAssertEqual(manyNots.scans, 20, "as written: one pass per negation")
        XCTAssertEqual(manyNots.cost, .init(terms: 20, fullScans: 1), "normalized: one pass")
        XCTAssertEqual(try TagExpression.parse("vip & !churned").cost.fullScans, 0)
        XCTAssertEqual(try TagExpression.parse("!(a | b)").cost.fullScans, 1)
        XCTAssertEqual(try TagExpression.parse("!!vip").cost.fullScans, 0)
        XCTAssertNoThrow(try TagExpression.parse("(a & !b) | (c & !d)").checkCost())

        let scans = try TagExpression.parse("(!a & !b) | (!c & !d) | (!e & !f)")
        XCTAssertThrowsError(try scans.checkCost()) { error in
            XCTAssertTrue((error as? TagExpression.CostError)?.reason.contains("3 passes over all customers") == true, "\(error)")
        }
        let terms = try TagExpression.parse((1...65).map { "t\($0)" }.joined(separator: " | "))
        XCTAssertThrowsError(try terms.checkCost()) { error in
            XCTAssertEqual((error as? TagExpression.CostError)?.reason, "the expression reads 65 terms; at most 64")
        }
    }
}
