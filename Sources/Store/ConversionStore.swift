import GatewayCore
import RedisClient

/// Conversion attribution: a customer's goal event against the campaigns that reached it.
public struct ConversionStore: Sendable {
    let redis: RedisPool

    public init(redis: RedisPool) { self.redis = redis }

    /// Records `type` at `atMs` as a conversion of every campaign in `goals` (id -> event type, window)
    /// whose goal it is and that reached (or held out) the customer within the window before it.
    /// Returns the campaigns converted.
    @discardableResult
    public func record(customer: String, type: String, atMs: Int64, goals: [String: (event: String, windowMs: Int64)]) async throws -> [String] {
        let matching = goals.filter { $0.value.event == type }
        guard !matching.isEmpty else { return [] }
        let exposures = try await redis.send("HKEYS", Keys.customerCampaigns(customer)).strings
        let candidates = exposures.filter { matching[$0] != nil }.sorted()
        guard !candidates.isEmpty else { return [] }
        if redis.isCluster {
            // In the customer's slot; the counts go through its outbox (MessageStore+ClusterSteps).
            let shard = IndexShard(customer: customer)
            let converted = try await redis.fcall(
                StoreFunctions.library, "conversion_record_slot", keys: [Keys.counterOutbox(shard), Keys.customerCampaigns(customer)],
                args: [String(atMs)] + candidates.flatMap { [$0, String(matching[$0]!.windowMs), Keys.campaignStats($0)] }
            ).strings
            try await MessageStore(redis: redis).flushCounters([shard])
            return converted
        }
        return try await redis.fcall(
            StoreFunctions.library, "conversion_record", keys: [Keys.customerCampaigns(customer)] + candidates.map(Keys.campaignStats),
            args: [String(atMs)] + candidates.flatMap { [$0, String(matching[$0]!.windowMs)] }
        ).strings
    }
}
