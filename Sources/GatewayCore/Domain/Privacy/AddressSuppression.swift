import GatewayCrypto

/// Where an address's opt-out (unsubscribe, STOP, bounce) and an erased person's suppression entry
/// are kept: `optout:<channel>:<HMAC-SHA256(key, address)>`. Redis never holds the address itself,
/// and without the key a dump cannot be matched against a list of phone numbers.
public struct AddressSuppression: Sendable {
    /// The key `SCRM_ENV=dev` runs with when none is configured (never outside dev: see main).
    public static let devKey = "scrm-dev-suppression-key"

    let key: [UInt8]

    public init(key: String) { self.key = Array(key.utf8) }

    /// The configured key, or the dev key.
    public init(_ config: GatewayConfig) { self.init(key: config.privacy.suppressionKey ?? Self.devKey) }

    /// The opt-out key of an address on a channel (`sms`, `email`); email is compared without case.
    public func key(channel: String, address: String) -> String {
        let normal = channel == "email" ? address.lowercased() : address
        return Keys.optOut(channel: channel, addressHash: Hex.encode(HMAC.sha256(key: key, data: Array("\(channel)|\(normal)".utf8)).prefix(20)))
    }
}
