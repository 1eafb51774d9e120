import Foundation
import GatewayCore
import Outbound
import RedisClient
import ServiceLifecycle
import Store

/// Completes erasures in the background (their stream purge, or all of it after a process stopped
/// half-way), and merges a process stopped between their steps (a cluster's), until graceful
/// shutdown; any process may finish another's.
public struct ErasureService: Service {
    public let erasure: CustomerErasure
    let customers: CustomerStore
    let clock: GatewayClock

    public init(config: GatewayConfig, redis: RedisPool, crmAdapters: [String], clock: @escaping GatewayClock = systemClock) {
        erasure = CustomerErasure(redis: redis, config: config, crmAdapters: crmAdapters, clock: clock)
        customers = CustomerStore(redis: redis, config: config)
        self.clock = clock
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            async let merges: Void = customers.sweepMerges(clock: clock)
            await erasure.run()
            await merges
        }
    }
}
