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
        return try await redis.fcall(
            StoreFunctions.library, "conversion_record", keys: [Keys.customerCampaigns(customer)] + candidates.map(Keys.campaignStats),
            args: [String(atMs)] + candidates.flatMap { [$0, String(matching[$0]!.windowMs)] }
        ).strings
    }
}
