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
        return Base64URL.encode(Array(payload.utf8)) + "." + mac(payload)
    }

    /// The (channel, address) a genuine token names; nil for anything forged or malformed.
    public func verify(_ token: String) -> (channel: String, address: String)? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].utf8.count <= 512, let bytes = Base64URL.decode(String(parts[0])) else { return nil }
        let payload = String(decoding: bytes, as: UTF8.self)
        guard ConstantTime.equals(String(parts[1]), mac(payload)) else { return nil }
        let fields = payload.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false)
        guard fields.count == 2, !fields[1].isEmpty else { return nil }
        return (String(fields[0]), String(fields[1]))
    }

    private func mac(_ payload: String) -> String { String(Hex.encode(HMAC.sha256(key: secret, data: Array(payload.utf8))).prefix(32)) }
}

/// Base64 with the URL-safe alphabet (`-`, `_`) and no padding, as tokens in links use it. Written
/// out by hand: a tracked-link click decodes one, on the hot path.
public enum Base64URL {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    static let values: [Int8] = {
        var v = [Int8](repeating: -1, count: 256)
        for (i, c) in alphabet.enumerated() { v[Int(c)] = Int8(i) }
        return v
    }()

    public static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var i = 0
        while i < bytes.count {
            let b0 = UInt32(bytes[i])
            let b1 = i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0
            let b2 = i + 2 < bytes.count ? UInt32(bytes[i + 2]) : 0
            let n = b0 << 16 | b1 << 8 | b2
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            if i + 1 < bytes.count { out.append(alphabet[Int(n >> 6 & 63)]) }
            if i + 2 < bytes.count { out.append(alphabet[Int(n & 63)]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Nil for anything outside the alphabet, padded, of an impossible length, or not canonical (the
    /// unused low bits of the last character set: two spellings of the same bytes would both verify).
    public static func decode(_ s: String) -> [UInt8]? {
        let chars = Array(s.utf8)
        guard chars.count % 4 != 1 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(chars.count * 3 / 4)
        var acc: UInt32 = 0
        var bits = 0
        for c in chars {
            let v = values[Int(c)]
            guard v >= 0 else { return nil }
            acc = acc << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
            }
        }
        guard acc & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return out
    }
}
