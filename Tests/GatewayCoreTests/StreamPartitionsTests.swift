import GatewayCore
import GatewayCrypto
import XCTest

/// How stream:inbound and the send queues split over a cluster's masters.
final class StreamPartitionsTests: XCTestCase {
    /// The master of a slot when 3 masters hold equal contiguous ranges (redis-cli --cluster create).
    private func master(ofSlot slot: Int, masters: Int = 3) -> Int { min(masters - 1, slot * masters / HashSlot.count) }

    func test_aSingleRedis_keepsTheStreamsOwnNames() {
        let one = StreamPartitions.single
        XCTAssertEqual(one.all(Keys.inboundStream), ["stream:inbound"])
        XCTAssertEqual(one.inbound(customer: "01KCUSTOMER"), "stream:inbound")
        XCTAssertEqual(one.outbound(channel: "sms", lane: .transactional, message: "m1"), "stream:out:sms:tx")
    }

    func test_partitions_lieInTheirOwnSlotRange_soEachMasterGetsItsShare() {
        for (count, masters) in [(3, 3), (6, 3), (12, 3), (10, 10), (30, 30)] {
            let p = StreamPartitions(count: count)
            let names = p.all("stream:out:sms")
            XCTAssertEqual(Set(names).count, count)
            var perMaster = [Int](repeating: 0, count: masters)
            for (i, name) in names.enumerated() {
                XCTAssertTrue(name.hasPrefix("stream:out:sms:{"), name)
                let slot = HashSlot.of(name)
                XCTAssertEqual(p.partition(ofSlot: slot), i, "\(name) sits among the slots of its own subjects")
                perMaster[master(ofSlot: slot, masters: masters)] += 1
            }
            XCTAssertEqual(Set(perMaster), [count / masters], "\(count) over \(masters): \(perMaster)")
        }
    }

    func test_aSubjectGoesToThePartitionOfItsSlot_andCustomersSpreadEvenly() {
        let p = StreamPartitions(count: 6)
        var counts = [String: Int]()
        for i in 0..<60_000 {
            let id = "01KCUSTOMER\(i)"
            let stream = p.inbound(customer: id)
            XCTAssertEqual(stream, p.inbound(customer: id), "the same customer, the same partition")
            XCTAssertEqual(stream, p.name(Keys.inboundStream, partition: p.partition(ofSlot: HashSlot.of(Keys.customer(id)))))
            counts[stream, default: 0] += 1
        }
        XCTAssertEqual(counts.count, 6)
        XCTAssertTrue(counts.values.allSatisfy { abs($0 - 10_000) < 600 }, "\(counts)")
    }

    func test_aPartitionsDedupMarks_shareItsSlot_andItsChannelIsRead() {
        let p = StreamPartitions(count: 6)
        for stream in p.all(Keys.inboundStream) + p.all(Keys.outboundStream(channel: "email", lane: .transactional)) {
            XCTAssertEqual(HashSlot.of(Keys.streamAppended(stream, op: "accept:m1")), HashSlot.of(stream), stream)
        }
        for stream in p.all(Keys.outboundStream(channel: "email", lane: .transactional)) + p.all(Keys.outboundStream(channel: "email", lane: .bulk)) {
            XCTAssertEqual(Keys.outboundChannel(stream: stream), "email", stream)
        }
        XCTAssertEqual(StreamPartitions.base(of: p.name("stream:out:sms:tx", partition: 4)), "stream:out:sms:tx")
        XCTAssertEqual(StreamPartitions.base(of: "stream:out:sms"), "stream:out:sms")
        XCTAssertNil(Keys.outboundChannel(stream: p.name(Keys.inboundStream, partition: 2)))
        XCTAssertEqual(StreamPartitions.entryId("1700000000000-3", partition: 0), "1700000000000-3")
        XCTAssertEqual(StreamPartitions.entryId("1700000000000-3", partition: 5), "1700000000000-3@5")
    }
}
