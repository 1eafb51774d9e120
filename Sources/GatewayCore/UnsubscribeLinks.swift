import Foundation
import GatewayCrypto

/// Signed one-click unsubscribe links: `{publicURL}/u/{token}`, token = base64url("channel|address")
/// + "." + the first 128 bits of HMAC-SHA256 over it, hex. Anyone holding the link can unsubscribe
/// that address from that channel, and nobody can make a link for another address.
public struct UnsubscribeLinks: Sendable {
    let secret: [UInt8]
    let publicURL: String

    public init?(secret: String?, publicURL: String) {
        guard let secret, secret.utf8.count >= 16 else { return nil }
        self.secret = Array(secret.utf8)
        self.publicURL = publicURL
    }

    public func url(channel: String, address: String) -> String { "\(publicURL)/u/\(token(channel: channel, address: address))" }

    public func token(channel: String, address: String) -> String {
        let payload = "\(channel)|\(address)"
        return Self.base64url(Array(payload.utf8)) + "." + mac(payload)
    }

    /// The (channel, address) a genuine token names; nil for anything forged or malformed.
    public func verify(_ token: String) -> (channel: String, address: String)? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].utf8.count <= 512, let bytes = Self.unbase64url(String(parts[0])) else { return nil }
        let payload = String(decoding: bytes, as: UTF8.self)
        guard ConstantTime.equals(String(parts[1]), mac(payload)) else { return nil }
        let fields = payload.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false)
        guard fields.count == 2, !fields[1].isEmpty else { return nil }
        return (String(fields[0]), String(fields[1]))
    }

    private func mac(_ payload: String) -> String { String(Hex.encode(HMAC.sha256(key: secret, data: Array(payload.utf8))).prefix(32)) }

    static func base64url(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func unbase64url(_ s: String) -> [UInt8]? {
        var b = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b.count % 4 != 0 { b += "=" }
        return Data(base64Encoded: b).map(Array.init)
    }
}
