import GatewayCrypto

/// The secrets that sign and encrypt link tokens (unsubscribe links, tracked links), by version. New
/// tokens use the current version; tokens of a retired version still verify until it is dropped from
/// the config, so a secret is rotated without breaking links already sent:
/// `outbound.linkSecret` + `linkSecretVersion: 2` + `retiredLinkSecrets: {"1": old}`.
public struct LinkKeys: Sendable {
    public let version: Int
    let secrets: [Int: [UInt8]]

    /// Nil when the current secret is missing or shorter than 16 characters.
    public init?(secret: String?, version: Int = 1, retired: [Int: String] = [:]) {
        guard let secret, secret.utf8.count >= 16, (1...63).contains(version) else { return nil }
        self.version = version
        var all = [Int: [UInt8]]()
        for (v, s) in retired where v != version && (1...63).contains(v) && s.utf8.count >= 16 { all[v] = Array(s.utf8) }
        all[version] = Array(secret.utf8)
        secrets = all
    }

    public init?(_ o: GatewayConfig.Outbound) {
        self.init(secret: o.linkSecret, version: o.linkSecretVersion, retired: o.retiredLinkSecrets)
    }

    /// A key for one purpose, derived from the secret of `version`.
    func key(_ version: Int, _ purpose: String, length: Int = 32) -> [UInt8]? {
        secrets[version].map { Array(HMAC.sha256(key: $0, data: Array(purpose.utf8)).prefix(length)) }
    }
}

/// A link format built on `LinkKeys`, made from one secret (version 1) or from the outbound config.
public protocol LinkKeyed: Sendable {
    init(keys: LinkKeys, publicURL: String)
}

extension LinkKeyed {
    public init?(secret: String?, publicURL: String) {
        guard let keys = LinkKeys(secret: secret) else { return nil }
        self.init(keys: keys, publicURL: publicURL)
    }

    public init?(_ o: GatewayConfig.Outbound) {
        guard let keys = LinkKeys(o) else { return nil }
        self.init(keys: keys, publicURL: o.publicURL)
    }
}

/// AES-128 in counter mode over `AES128Block`: the keystream for a 16-byte nonce (12 bytes of nonce
/// and a 4-byte block counter).
enum CounterMode {
    static func apply(_ cipher: AES128Block, nonce: [UInt8], _ data: [UInt8]) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(data.count)
        var counter: UInt32 = 0
        var stream = [UInt8]()
        for (i, b) in data.enumerated() {
            if i % 16 == 0 {
                stream = cipher.encrypt(Array(nonce.prefix(12)) + [UInt8(counter >> 24), UInt8(counter >> 16 & 0xff), UInt8(counter >> 8 & 0xff), UInt8(counter & 0xff)])
                counter += 1
            }
            out.append(b ^ stream[i % 16])
        }
        return out
    }
}
