import Foundation
import GatewayCore
import RedisClient
import Synchronization

/// The per-campaign rate caps the senders apply, read from `camp:{id}` and kept for 10 s (a cap is
/// fixed when the campaign is created, so staleness only matters for campaigns just deleted).
final class CampaignRateCache: Sendable {
    private let entries = Mutex<[String: (rate: Double?, at: Int64)]>([:])

    func rate(_ campaign: String, redis: RedisPool, now: Int64) async throws -> Double? {
        if let e = entries.withLock({ $0[campaign] }), now - e.at < 10_000 { return e.rate }
        let value = try await redis.send("HGET", Keys.campaign(campaign), "ratePerSecond").string.flatMap(Double.init)
        let rate = value.flatMap { $0 > 0 ? $0 : nil }
        entries.withLock {
            if $0.count > 1000 { $0.removeAll() }
            $0[campaign] = (rate, now)
        }
        return rate
    }
}

/// Time zones by IANA name, looked up once each (customers' zones repeat; the lookup is not free).
final class TimeZoneCache: Sendable {
    private let zones = Mutex<[String: TimeZone?]>([:])

    func zone(_ name: String) -> TimeZone? {
        if let z = zones.withLock({ $0[name] }) { return z }
        let z = TimeZone(identifier: name)
        zones.withLock {
            if $0.count > 1000 { $0.removeAll() }
            $0[name] = z
        }
        return z
    }
}
