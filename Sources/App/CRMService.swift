import CRMSync
import Foundation
import GatewayCore
import HTTPTransport
import Logging
import RedisClient
import ServiceLifecycle

/// Loads the CRM adapters the config names (`crm.adapters`, specs in `crm.specsDir`); throws
/// `CRMSpecError` (file and key) for a bad spec or a secret that is not set.
public func loadCRMAdapters(config: GatewayConfig, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [CRMAdapterSpec] {
    try CRMAdapterSpecParser.load(directory: config.crm.specsDir, names: config.crm.adapters, environment: environment)
}

/// Runs one sync worker per CRM adapter until graceful shutdown; a batch on the wire at shutdown is
/// taken again by the next process after its lease.
public struct CRMService: Service {
    public let workers: [CRMSyncWorker]

    public init(specs: [CRMAdapterSpec], config: GatewayConfig, redis: RedisPool, transport: HTTPTransport = .shared, logger: Logger, clock: @escaping GatewayClock = systemClock) {
        workers = specs.map { CRMSyncWorker(spec: $0, redis: redis, transport: transport, settings: config.crm, logger: logger, clock: clock) }
    }

    public func run() async throws {
        // A service group treats a service that returns as failed: with nothing to sync, just wait.
        guard !workers.isEmpty else { return try await gracefulShutdown() }
        try await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                for w in workers { group.addTask { await w.run() } }
            }
        }
    }
}
