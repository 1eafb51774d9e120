import Foundation
import GatewayCrypto

/// Tracked links and open pixels: `{publicURL}/l/{token}` and `{publicURL}/o/{token}.gif`. A token is
/// 31 characters of base64url over the message id encrypted (AES-128, one block: opaque, nothing
/// readable in it), the link's number in the message, and 48 bits of HMAC-SHA256 over both (a forged
/// or altered token is refused). Keys are derived from the link secret of a version (`LinkKeys`):
/// version 1 tokens are those 31 characters, later versions carry the version in a first character.
/// A cluster's message id (`MessageId`, `<tag>.<ULID>`) adds its slot (two bytes, under the HMAC):
/// 34 characters, 35 with the version.
public struct LinkTokens: LinkKeyed {
    let keys: LinkKeys
    public let publicURL: String
    /// The number an open pixel carries instead of a link's.
    public static let openPixel = 255

    public init(keys: LinkKeys, publicURL: String) {
        self.keys = keys
        self.publicURL = publicURL
    }

    public func token(messageId: String, index: Int) -> String? {
        let (ulid, slot) = MessageId.split(messageId)
        guard let id = ULID.bytes(String(ulid)), (0...255).contains(index), let cipher = cipher(keys.version) else { return nil }
        var body = cipher.encrypt(id)
        body.append(UInt8(index))
        if let slot { body += [UInt8(slot >> 8), UInt8(slot & 0xFF)] }
        let token = Base64URL.encode(body + mac(keys.version, body)!)
        return keys.version == 1 ? token : String(UnicodeScalar(Base64URL.alphabet[keys.version])) + token
    }

    public func clickURL(messageId: String, index: Int) -> String? { token(messageId: messageId, index: index).map { "\(publicURL)/l/\($0)" } }
    public func openURL(messageId: String) -> String? { token(messageId: messageId, index: Self.openPixel).map { "\(publicURL)/o/\($0).gif" } }

    /// The message and link a genuine token names; nil for anything forged, altered or malformed.
    public func verify(_ token: String) -> (messageId: String, index: Int)? {
        var version = 1
        var body = Substring(token)
        if token.utf8.count == 32 || token.utf8.count == 35, let first = token.utf8.first {
            version = Int(Base64URL.values[Int(first)])
            guard version >= 2 else { return nil }
            body = token.dropFirst()
        }
        // 17 bytes (the encrypted ULID and the link's number), 19 with a cluster id's slot; then the MAC.
        let length = body.utf8.count == 31 ? 17 : body.utf8.count == 34 ? 19 : 0
        guard length > 0, let bytes = Base64URL.decode(String(body)), bytes.count == length + 6, let cipher = cipher(version),
            let expected = mac(version, Array(bytes[0..<length]))
        else { return nil }
        guard ConstantTime.equals(Array(bytes[length..<(length + 6)]), expected), let ulid = ULID.string(cipher.decrypt(Array(bytes[0..<16]))) else {
            return nil
        }
        guard length == 19 else { return (ulid, Int(bytes[16])) }
        let slot = Int(bytes[17]) << 8 | Int(bytes[18])
        guard slot < HashSlot.count else { return nil }
        return (MessageId.tagged(ulid, slot: slot), Int(bytes[16]))
    }

    private func cipher(_ v: Int) -> AES128Block? { keys.key(v, "scrm link cipher", length: 16).map(AES128Block.init(key:)) }
    private func mac(_ v: Int, _ body: [UInt8]) -> [UInt8]? { keys.key(v, "scrm link mac").map { Array(HMAC.sha256(key: $0, data: body).prefix(6)) } }
}
