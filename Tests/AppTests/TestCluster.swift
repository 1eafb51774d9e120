import Foundation
import TestSupport

/// The Redis Cluster that scripts/test's cluster stage starts: `SCRM_TEST_REDIS_CLUSTER` lists its
/// nodes' loopback ports (masters and replicas, comma-separated). Unset: each harness starts its own
/// redis-server.
enum TestCluster {
    static let nodes: [Int]? = {
        guard let list = ProcessInfo.processInfo.environment["SCRM_TEST_REDIS_CLUSTER"], !list.isEmpty else { return nil }
        return list.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    }()

    /// Empties every master (a replica refuses FLUSHALL and follows its master).
    static func flush(_ ports: [Int]) throws {
        for port in ports { _ = try LocalProcess.run(["/usr/bin/redis-cli", "-p", String(port), "FLUSHALL", "SYNC"]) }
    }
}
