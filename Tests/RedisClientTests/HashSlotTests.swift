import GatewayCrypto
import RedisClient
import TestSupport
import XCTest

/// `HashSlot` against a real cluster-enabled redis-server's `CLUSTER KEYSLOT`.
final class HashSlotTests: XCTestCase {
    func test_slots_matchRedisClusterKeyslot_withAndWithoutHashTags() async throws {
        // The cluster bus port is named: by default it is the port + 10,000, which can be taken or past 65,535.
        let server = try RedisTestServer(extraArguments: [
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes-\(UUID().uuidString).conf", "--cluster-port", String(try RedisTestServer.freePort()),
        ])
        let redis = RedisPool(server.configuration)
        defer { redis.shutdown() }
        var keys = [
            "", "a", "123456789", "cust:{c:01J8ZK}", "cust:{c:01J8ZK}:tags", "idx:{i:phone:+8613900000000}", "{user1000}.following",
            "foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}", "{}", "}{", "{", "tag:{b17}:vip", "stream:inbound:{p3}", "ключ", "键:{值}",
        ]
        for i in 0..<200 { keys.append("k\(i):{t\(i % 7)}:\(i * 7919)") }
        let expected = try await redis.pipeline(keys.map { ["CLUSTER", "KEYSLOT", $0] }).map(\.int)
        XCTAssertEqual(keys.map { Optional(HashSlot.of($0)) }, expected)
        XCTAssertEqual(HashSlot.of("123456789"), 0x31C3 % 16_384, "CRC16/XMODEM's check value")
        XCTAssertEqual(HashSlot.of("cust:{c:01J8ZK}"), HashSlot.of("cust:{c:01J8ZK}:timeline"), "one tag, one slot")
    }
}
