import GatewayCrypto
import XCTest

@testable import GatewayCore

final class IndexShardTests: XCTestCase {
    func test_eachSlotsShard_isInThatSlot_withAShortDistinctTag() {
        let shards = IndexShard.everySlot
        XCTAssertEqual(shards.count, HashSlot.count)
        XCTAssertEqual(Set(shards.compactMap(\.tag)).count, HashSlot.count, "distinct tags")
        for (slot, shard) in shards.enumerated() {
            XCTAssertEqual(HashSlot.of(shard.key("tag", "vip")), slot, "slot \(slot)")
            XCTAssertEqual(HashSlot.of(shard.key("lastseen")), slot)
            XCTAssertLessThanOrEqual(shard.tag?.count ?? 99, 5, "short: \(shard.tag ?? "")")
        }
    }

    func test_aCustomersShard_sharesTheSlotOfItsOwnKeys() {
        for i in 0..<2_000 {
            let id = ULID.make(milliseconds: 1_790_000_000_000 + Int64(i))
            let shard = IndexLayout.perSlot.shard(customer: id)
            XCTAssertEqual(HashSlot.of(shard.key("fidx", "consent:sms")), HashSlot.of(Keys.customerTags(id)), id)
            XCTAssertEqual(shard, IndexShard(customer: id), "stable")
        }
    }

    func test_theSingleShard_keepsTheUnshardedNames() {
        let shard = IndexLayout.single.shard(customer: "01J8ZK5V2M3N4P5Q6R7S8T9V0W")
        XCTAssertEqual(shard, .single)
        XCTAssertEqual(shard.key("tag", "vip"), "tag:vip")
        XCTAssertEqual(shard.key("lastseen"), "lastseen")
        XCTAssertEqual(shard.argument, "")
        XCTAssertEqual(IndexLayout.single.shards, [.single])
        let sharded = IndexShard(slot: 0)
        XCTAssertEqual(sharded.argument, "{\(sharded.tag!)}")
        XCTAssertEqual(sharded.key("tag", "vip"), "tag:{\(sharded.tag!)}:vip")
    }
}
