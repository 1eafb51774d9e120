import Foundation
import NIOConcurrencyHelpers

/// Time zones by IANA name, looked up once each (customers' zones repeat; the lookup is not free).
final class TimeZoneCache: Sendable {
    private let zones = NIOLockedValueBox<[String: TimeZone?]>([:])

    func zone(_ name: String) -> TimeZone? {
        if let z = zones.withLockedValue({ $0[name] }) { return z }
        let z = TimeZone(identifier: name)
        zones.withLockedValue {
            if $0.count > 1000 { $0.removeAll() }
            $0[name] = z
        }
        return z
    }
}
