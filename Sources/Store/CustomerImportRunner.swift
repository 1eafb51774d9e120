import Foundation
import GatewayCore
import GatewayCrypto

/// Applies import jobs in every gateway process: each pass takes the lease of the active jobs it can
/// and applies their chunks in order until none is waiting. A process that dies loses its lease
/// after `leaseMs`; the next one resumes at the job's checkpoint.
public struct CustomerImportRunner: Sendable {
    let store: CustomerImportStore
    let clock: @Sendable () -> Int64
    let owner: String
    let leaseMs: Int

    public init(store: CustomerImportStore, clock: @escaping @Sendable () -> Int64, leaseMs: Int = 15_000) {
        self.store = store
        self.clock = clock
        self.leaseMs = leaseMs
        owner = "\(ProcessInfo.processInfo.hostName)-\(getpid())-\(SecureRandom.alphanumeric(6))"
    }

    /// Runs until cancelled: a pass every `intervalMs` when there was nothing to do.
    public func run(intervalMs: Int = 200) async {
        while !Task.isCancelled {
            let worked = (try? await pass()) ?? false
            if !worked { try? await Task.sleep(for: .milliseconds(intervalMs)) }
        }
    }

    /// One pass over the active jobs; true when a chunk was applied.
    @discardableResult
    public func pass() async throws -> Bool {
        var worked = false
        for id in try await store.active() where try await store.lease(id: id, owner: owner, ms: leaseMs) {
            var applied = 0
            while !Task.isCancelled {
                guard case .applied = try await store.step(id: id, nowMs: clock()) else { break }
                applied += 1
                worked = true
                // Keep the lease while working through a long import.
                if applied % 20 == 0, !(try await store.lease(id: id, owner: owner, ms: leaseMs)) { break }
            }
        }
        return worked
    }
}
