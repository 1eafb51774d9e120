import GatewayCrypto
import XCTest

@testable import GatewayCore

final class CustomerBucketTests: XCTestCase {
    func test_eachBucketsTag_landsOnItsOwnEvenlySpacedSlot() {
        let buckets = CustomerBucket.all
        XCTAssertEqual(buckets.count, 1_024)
        XCTAssertEqual(Set(buckets.map(\.tag)).count, 1_024, "distinct tags")
        for b in buckets {
            XCTAssertEqual(HashSlot.of("tag:{\(b.tag)}:vip"), b.index * 16, "bucket \(b.index)")
            XCTAssertEqual(b.slot, b.index * 16)
            XCTAssertLessThanOrEqual(b.tag.count, 6, "short: \(b.tag)")
        }
        // Masters with even slot ranges hold the same number of buckets, give or take one.
        for masters in [3, 10, 30] {
            var perMaster = [Int](repeating: 0, count: masters)
            for b in buckets { perMaster[b.slot * masters / HashSlot.count] += 1 }
            XCTAssertLessThanOrEqual((perMaster.max() ?? 0) - (perMaster.min() ?? 0), 1, "\(masters) masters: \(perMaster)")
        }
    }

    func test_customersSpreadEvenlyOverBuckets_andABucketIsStable() {
        var counts = [Int](repeating: 0, count: CustomerBucket.count)
        let n = 100_000
        for i in 0..<n { counts[CustomerBucket(customer: ULID.make(milliseconds: 1_790_000_000_000 + Int64(i))).index] += 1 }
        let mean = Double(n) / Double(CustomerBucket.count)
        XCTAssertLessThan(Double(counts.max() ?? 0), mean * 1.5, "no hot bucket")
        XCTAssertGreaterThan(Double(counts.min() ?? 0), mean * 0.5, "no empty corner")
        let id = "01J8ZK5V2M3N4P5Q6R7S8T9V0W"
        XCTAssertEqual(CustomerBucket(customer: id), CustomerBucket(customer: id))
        XCTAssertEqual(CustomerBucket(customer: id).index, HashSlot.of(id) % 1_024)
    }
}
