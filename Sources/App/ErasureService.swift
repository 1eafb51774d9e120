import Foundation
import GatewayCore
import Outbound
import RedisClient
import ServiceLifecycle
import Store

/// Completes erasures in the background (their stream purge, or all of it after a process stopped
/// half-way) until graceful shutdown; any process may finish another's.
public struct ErasureService: Service {
    public let erasure: CustomerErasure

    public init(config: GatewayConfig, redis: RedisPool, crmAdapters: [String], clock: @escaping GatewayClock = systemClock) {
        erasure = CustomerErasure(redis: redis, config: config, crmAdapters: crmAdapters, clock: clock)
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown { await erasure.run() }
    }
}
