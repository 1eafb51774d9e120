import Foundation
import GatewayCrypto

/// Signed one-click unsubscribe links: `{publicURL}/u/{token}`. A token is `<key version>.<base64url of
/// a 12-byte nonce and "channel|address" encrypted (AES-128-CTR)>.<128 bits of HMAC-SHA256 over the
/// version, nonce and ciphertext, hex>`: nobody can read the address in it, and nobody can make one for
/// another address. Tokens of the first format (the address base64-encoded, not encrypted) still
/// verify against key version 1, for links already sent; none are issued any more.
public struct UnsubscribeLinks: LinkKeyed {
    let keys: LinkKeys
    let publicURL: String

    public init(keys: LinkKeys, publicURL: String) {
        self.keys = keys
        self.publicURL = publicURL
    }

    public func url(channel: String, address: String) -> String { "\(publicURL)/u/\(token(channel: channel, address: address))" }

    public func token(channel: String, address: String) -> String {
        let v = keys.version
        let nonce = SecureRandom.bytes(12)
        let sealed = nonce + CounterMode.apply(cipher(v)!, nonce: nonce, Array("\(channel)|\(address)".utf8))
        return "\(v).\(Base64URL.encode(sealed)).\(mac(v, Array("\(v).".utf8) + sealed)!)"
    }

    /// The (channel, address) a genuine token names; nil for anything forged or malformed.
    public func verify(_ token: String) -> (channel: String, address: String)? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        let payload: String
        switch parts.count {
        case 3:
            guard let v = Int(parts[0]), parts[0].utf8.count <= 2, parts[1].utf8.count <= 700, let sealed = Base64URL.decode(String(parts[1])),
                sealed.count > 12, let expected = mac(v, Array("\(v).".utf8) + sealed), ConstantTime.equals(String(parts[2]), expected),
                let cipher = cipher(v)
            else { return nil }
            payload = String(decoding: CounterMode.apply(cipher, nonce: Array(sealed.prefix(12)), Array(sealed.dropFirst(12))), as: UTF8.self)
        case 2:
            // The first format: readable, signed with version 1's secret.
            guard parts[0].utf8.count <= 512, let bytes = Base64URL.decode(String(parts[0])) else { return nil }
            let text = String(decoding: bytes, as: UTF8.self)
            guard let expected = legacyMac(text), ConstantTime.equals(String(parts[1]), expected) else { return nil }
            payload = text
        default: return nil
        }
        let fields = payload.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false)
        guard fields.count == 2, !fields[1].isEmpty else { return nil }
        return (String(fields[0]), String(fields[1]))
    }

    private func cipher(_ v: Int) -> AES128Block? { keys.key(v, "scrm unsubscribe cipher", length: 16).map(AES128Block.init(key:)) }

    private func mac(_ v: Int, _ data: [UInt8]) -> String? {
        keys.key(v, "scrm unsubscribe mac").map { String(Hex.encode(HMAC.sha256(key: $0, data: data)).prefix(32)) }
    }

    private func legacyMac(_ payload: String) -> String? {
        keys.secrets[1].map { String(Hex.encode(HMAC.sha256(key: $0, data: Array(payload.utf8))).prefix(32)) }
    }
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
