import ServiceLifecycle
import Store

/// The scoring worker (`ScoringWorker`, beside the scores in `Store`) as a service of the process:
/// it stops with the graceful shutdown.
public struct ScoringService: Service {
    let worker: ScoringWorker

    public init(worker: ScoringWorker) { self.worker = worker }

    public func run() async throws {
        try await cancelWhenGracefulShutdown { await worker.loop() }
    }
}
