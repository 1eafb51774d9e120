import GatewayCore
import RedisClient

extension RedisPool {
    /// How this deployment's busy streams are partitioned (one partition on a single Redis).
    public var streams: StreamPartitions { StreamPartitions(count: streamPartitions) }

    /// `base` itself when its streams are partitioned and it still holds entries: a stream carried
    /// over from a single Redis (README, "Moving a deployment to a cluster"), read with its consumer
    /// groups where they were until it is empty, while new entries go to the partitions. Else nil.
    public func carriedOver(_ base: String) async -> String? {
        guard streamPartitions > 1, let length = try? await send("XLEN", base).int, length > 0 else { return nil }
        return base
    }
}
