import GatewayCore
import GatewayCrypto
@testable import Store
import XCTest

/// Pages over per-shard sets (campaign snapshots, tag pages) walk the 16,384 slots in bit-reversed
/// order, so that a campaign's chunks queue recipients on every master at once.
final class ShardWalkTests: XCTestCase {
    func test_walk_visitsEverySlotOnce_andAnyRunSpreadsOverEqualSlotRanges() {
        let order = (0..<HashSlot.count).map { IndexShards.walk(at: $0) }
        XCTAssertEqual(Set(order).count, HashSlot.count, "a permutation of the slots")
        XCTAssertEqual(order.prefix(4).map(\.tag), [0, 8192, 4096, 12288].map { IndexShard(slot: $0).tag })
        // Three masters with equal contiguous ranges, as redis-cli --cluster create gives them.
        func master(_ shard: IndexShard) -> Int {
            let slot = IndexShard.everySlot.firstIndex(of: shard)!
            return min(2, slot * 3 / HashSlot.count)
        }
        for start in stride(from: 0, to: HashSlot.count - 96, by: 1_000) {
            var perMaster = [0, 0, 0]
            for shard in order[start..<start + 96] { perMaster[master(shard)] += 1 }
            XCTAssertTrue(perMaster.allSatisfy { (28...36).contains($0) }, "positions \(start)..<\(start + 96): \(perMaster)")
        }
    }
}
