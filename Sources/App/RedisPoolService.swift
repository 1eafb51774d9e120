import RedisClient
import ServiceLifecycle

/// Closes the Redis pool on graceful shutdown. Put it before the application in a ServiceGroup: services
/// stop in reverse order, so the pool closes after the server has drained its requests.
public struct RedisPoolService: Service {
    let pool: RedisPool

    public init(pool: RedisPool) { self.pool = pool }

    public func run() async throws {
        try? await gracefulShutdown()
        pool.shutdown()
    }
}
