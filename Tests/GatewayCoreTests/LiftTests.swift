import XCTest

@testable import GatewayCore

/// The report's arithmetic against values worked by hand (the formulas in `Lift`'s comment).
final class LiftTests: XCTestCase {
    func test_liftAgainstTheHoldout_hasTheHandComputedInterval() throws {
        // A: 60 of 1,000 (6%); hold-out: 20 of 500 (4%). d = 0.02,
        // SE = sqrt(0.06*0.94/1000 + 0.04*0.96/500) = sqrt(0.0000564 + 0.0000768) = 0.0115412,
        // 95%: 0.02 ± 1.959964 * 0.0115412 = [-0.002620, 0.042620]: not significant; relative +50%.
        let a = Lift.Group(name: "A", trials: 1000, successes: 60)
        let holdout = Lift.Group(name: "holdout", trials: 500, successes: 20)
        let d = try XCTUnwrap(Lift.difference(a, holdout))
        XCTAssertEqual(d.absolute, 0.02, accuracy: 1e-9)
        XCTAssertEqual(d.low, -0.002620, accuracy: 1e-6)
        XCTAssertEqual(d.high, 0.042620, accuracy: 1e-6)
        XCTAssertEqual(d.relative ?? 0, 0.5, accuracy: 1e-9)
        XCTAssertFalse(d.significant)
        // C: 130 of 1,000: SE = sqrt(0.13*0.87/1000 + 0.0000768) = 0.0137800, 0.09 ± 0.027009.
        let c = try XCTUnwrap(Lift.difference(Lift.Group(name: "C", trials: 1000, successes: 130), holdout))
        XCTAssertEqual(c.low, 0.062991, accuracy: 1e-6)
        XCTAssertEqual(c.high, 0.117009, accuracy: 1e-6)
        XCTAssertTrue(c.significant)
        XCTAssertNil(Lift.difference(a, Lift.Group(name: "empty", trials: 0, successes: 0)))
        XCTAssertNil(Lift.difference(a, Lift.Group(name: "none", trials: 10, successes: 0))?.relative)
    }

    func test_variants_zTestNamesAWinnerOnlyWhenSignificant() throws {
        // B 90/1000 vs A 60/1000: pooled p = 0.075, SE = sqrt(0.075*0.925*0.002) = 0.0117792,
        // z = 0.03 / 0.0117792 = 2.54686 > 1.96: B wins.
        let a = Lift.Group(name: "A", trials: 1000, successes: 60)
        let b = Lift.Group(name: "B", trials: 1000, successes: 90)
        XCTAssertEqual(try XCTUnwrap(Lift.z(b, a)), 2.546858, accuracy: 1e-5)
        XCTAssertEqual(Lift.winner([a, b]), "B")
        // 70 vs 60 of 1,000: z = 0.01 / sqrt(0.065*0.935*0.002) = 0.9069: not yet.
        XCTAssertNil(Lift.winner([a, Lift.Group(name: "B", trials: 1000, successes: 70)]))
        XCTAssertNil(Lift.winner([a]))
        XCTAssertNil(Lift.winner([a, Lift.Group(name: "B", trials: 0, successes: 0)]))
    }
}
