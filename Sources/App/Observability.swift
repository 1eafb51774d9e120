import Metrics
import NIOConcurrencyHelpers
import Prometheus

/// The process-wide Prometheus registry. swift-metrics can be bootstrapped once per process, so the
/// first application built bootstraps it and later ones (tests) share it.
public enum Observability {
    private static let lock = NIOLock()
    nonisolated(unsafe) private static var shared: PrometheusCollectorRegistry?

    public static func registry() -> PrometheusCollectorRegistry {
        lock.withLock {
            if let shared { return shared }
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            shared = registry
            return registry
        }
    }
}
