import Foundation

/// How often and when a customer may get marketing messages, checked at send time. Caps and quiet
/// hours defer a message to the next allowed moment; transactional messages are exempt.
public struct ContactRules: Sendable, Equatable {
    /// At most `max` marketing messages in any `windowHours` (a sliding window), on `channel` or, for
    /// nil, on all channels together.
    public struct Cap: Sendable, Equatable {
        public var channel: String?
        public var max: Int
        public var windowHours: Int

        public init(channel: String?, max: Int, windowHours: Int) {
            self.channel = channel
            self.max = max
            self.windowHours = windowHours
        }
    }

    /// Local time of day in minutes (0...1439). The window may wrap midnight (21:00 -> 08:00).
    public struct QuietHours: Sendable, Equatable {
        public var startMinute: Int
        public var endMinute: Int

        public init(startMinute: Int, endMinute: Int) {
            self.startMinute = startMinute
            self.endMinute = endMinute
        }

        /// "HH:MM" -> minutes, or nil.
        public static func minute(_ text: String) -> Int? {
            let parts = text.split(separator: ":")
            guard parts.count == 2, parts[0].count == 2, parts[1].count == 2, let h = Int(parts[0]), let m = Int(parts[1]), (0..<24).contains(h),
                (0..<60).contains(m)
            else { return nil }
            return h * 60 + m
        }
    }

    public var caps: [Cap] = []
    /// Channels (sms, email) whose marketing goes only to customers who granted consent on them:
    /// no consent recorded is not enough (PIPL-style opt-in). Audiences honour it too.
    public var requireOptIn: Set<String> = []
    public var quietHours: QuietHours?
    /// Time zone of customers who have none and whose account sets none.
    public var timezone = "Asia/Shanghai"

    public init(caps: [Cap] = [], quietHours: QuietHours? = nil, timezone: String = "Asia/Shanghai") {
        self.caps = caps
        self.quietHours = quietHours
        self.timezone = timezone
    }

    /// When quiet hours are on at `nowMs` in `zone`: the moment they end (ms). Nil = not quiet now.
    public func quietUntil(nowMs: Int64, zone: TimeZone) -> Int64? {
        guard let q = quietHours, q.startMinute != q.endMinute else { return nil }
        let offset = Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(nowMs) / 1000))) * 1000
        let local = nowMs + offset
        let dayMs: Int64 = 86_400_000
        let msOfDay = ((local % dayMs) + dayMs) % dayMs
        let minute = Int(msOfDay / 60_000)
        let quiet = q.startMinute < q.endMinute ? (minute >= q.startMinute && minute < q.endMinute) : (minute >= q.startMinute || minute < q.endMinute)
        guard quiet else { return nil }
        let dayStart = local - msOfDay
        var endLocal = dayStart + Int64(q.endMinute) * 60_000
        if endLocal <= local { endLocal += dayMs }
        // Back to UTC with the offset at the end (a DST change inside the quiet window moves it by that much).
        let endOffset = Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(endLocal - offset) / 1000))) * 1000
        return endLocal - endOffset
    }

    /// Arguments for the ledger claim script: count, then channel ('*' = all), max, window ms per cap.
    public func capArguments(channel: String) -> [String] {
        let relevant = caps.filter { $0.channel == nil || $0.channel == channel }
        return [String(relevant.count)] + relevant.flatMap { [$0.channel ?? "*", String($0.max), String(Int64($0.windowHours) * 3_600_000)] }
    }

    /// The longest cap window, for trimming the per-customer send history.
    public var longestWindowMs: Int64 { Int64(caps.map(\.windowHours).max() ?? 0) * 3_600_000 }
}
