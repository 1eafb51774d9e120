import GatewayCore
import RedisClient
import Store

extension CustomerErasure {
    /// The erasure of this gateway: its suppression key, its CRM adapters, and the outbound and
    /// sandbox streams of every channel.
    public init(redis: RedisPool, config: GatewayConfig, crmAdapters: [String], clock: @escaping @Sendable () -> Int64) {
        self.init(
            redis: redis, suppression: AddressSuppression(config), crmAdapters: crmAdapters,
            streams: Self.streams(channels: AdapterSpec.Channel.allCases.map(\.rawValue), partitions: redis.streams), clock: clock)
    }
}
