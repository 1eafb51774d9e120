import GatewayCore
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

/// The Redis pool the configuration names: a Redis Cluster found from `redis.cluster`'s seeds, or the
/// single Redis at `redis.url`.
public func makeRedisPool(_ redis: GatewayConfig.Redis) throws -> RedisPool {
    if redis.cluster.isEmpty {
        return RedisPool(
            try RedisConfiguration(url: redis.url, connections: redis.connections, connectTimeoutMs: redis.connectTimeoutMs, commandTimeoutMs: redis.commandTimeoutMs))
    }
    let seeds = try redis.cluster.map {
        try RedisConfiguration(url: $0, connections: redis.connections, connectTimeoutMs: redis.connectTimeoutMs, commandTimeoutMs: redis.commandTimeoutMs)
    }
    return RedisPool(cluster: seeds, readFromReplicas: redis.readFromReplicas, waitForReplicas: redis.waitForReplicas, replicaWaitMs: redis.replicaWaitMs,
        streamPartitions: redis.streamPartitions)
}
