import Foundation
import GatewayCore
import NIOConcurrencyHelpers
import RedisClient
import Store

/// Attributes goal events to campaigns: consumer group `conversions` on `stream:inbound`; an
/// interaction whose type is some campaign's goal (`goal: {event, withinHours}`) is recorded by
/// `ConversionStore` against the campaigns that reached the customer (or held it out) within the
/// window. Goals are read again every few seconds, so a new campaign's goal counts at once.
public struct ConversionWorker: Sendable {
    let reader: StreamGroupReader
    let campaigns: CampaignStore
    let conversions: ConversionStore
    private let goals = NIOLockedValueBox<(at: ContinuousClock.Instant, goals: [String: (event: String, windowMs: Int64)])?>(nil)

    public init(redis: RedisPool) {
        // From now on: events from before the first gateway with goals cannot convert anything.
        reader = StreamGroupReader(redis: redis, streams: redis.streams.all(Keys.inboundStream), group: "conversions", from: "$")
        campaigns = CampaignStore(redis: redis)
        conversions = ConversionStore(redis: redis)
    }

    public func run() async {
        await reader.run { id, fields in try await handle(entry: id, fields: fields) }
    }

    func currentGoals() async throws -> [String: (event: String, windowMs: Int64)] {
        if let cached = goals.withLockedValue({ $0 }), ContinuousClock.now - cached.at < .seconds(3) { return cached.goals }
        let fresh = try await campaigns.goals()
        goals.withLockedValue { $0 = (ContinuousClock.now, fresh) }
        return fresh
    }

    func handle(entry: String, fields f: [String: String]) async throws {
        guard let type = f["type"], let customer = f["customer"], !customer.isEmpty else { return }
        let goals = try await currentGoals()
        guard goals.values.contains(where: { $0.event == type }) else { return }
        // The event's own time, else the stream entry's.
        let at = f["at"].flatMap { Int64($0) } ?? Int64(entry.split(separator: "-").first ?? "") ?? 0
        try await conversions.record(customer: customer, type: type, atMs: at, goals: goals)
    }
}
