/// A consent as the customer record stores it: field `consent.<channel>` (`wechat:<account>`,
/// `wecom:<account>`, `sms`, `email`) holding `<state>|<ms>`. The one place that reads and writes it.
public struct ConsentRecord: Sendable, Equatable {
    public let state: String
    public let at: Int64

    public init(state: String, at: Int64) {
        self.state = state
        self.at = at
    }

    public static let fieldPrefix = "consent."

    /// The customer-hash field of a channel's consent.
    public static func field(_ channel: String) -> String { fieldPrefix + channel }

    /// `<state>|<ms>`; a value without a time reads as at 0.
    public init?(stored: String) {
        let parts = stored.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false)
        guard let state = parts.first, !state.isEmpty else { return nil }
        self.state = String(state)
        at = parts.count > 1 ? Int64(parts[1]) ?? 0 : 0
    }

    public var stored: String { "\(state)|\(at)" }

    /// Every consent in a customer hash, by channel.
    public static func all(in hash: [String: String]) -> [String: ConsentRecord] {
        var out = [String: ConsentRecord]()
        for (k, v) in hash where k.hasPrefix(fieldPrefix) {
            if let c = ConsentRecord(stored: v) { out[String(k.dropFirst(fieldPrefix.count))] = c }
        }
        return out
    }

    /// The state alone of a stored value ("" when none), for exports.
    public static func state(_ stored: String?) -> String { stored.flatMap(ConsentRecord.init(stored:))?.state ?? "" }
}
