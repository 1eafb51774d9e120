import Foundation
import FuzzTargets
import XCTest

/// Every committed fuzz input (seeds in fuzz/corpus, crashes found and fixed in fuzz/regressions)
/// through its target: a broken invariant or a crash fails (traps) the run.
final class FuzzRegressionTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func test_everyCommittedInput_passesItsTarget() throws {
        var replayed = 0
        for folder in ["fuzz/corpus", "fuzz/regressions"] {
            let dir = Self.root.appendingPathComponent(folder)
            for target in (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [] {
                let run = try XCTUnwrap(FuzzTargets.all[target], "\(folder)/\(target) names no fuzz target")
                for file in try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent(target).path) {
                    run([UInt8](try Data(contentsOf: dir.appendingPathComponent(target).appendingPathComponent(file))))
                    replayed += 1
                }
            }
        }
        XCTAssertGreaterThanOrEqual(replayed, 18)
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: Self.root.appendingPathComponent("fuzz/corpus").path)), Set(FuzzTargets.names), "a seed folder per target")
    }
}
