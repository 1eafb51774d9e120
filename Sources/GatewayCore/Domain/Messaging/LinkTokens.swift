import Foundation
import GatewayCrypto

/// Tracked links and open pixels: `{publicURL}/l/{token}` and `{publicURL}/o/{token}.gif`. A token is
/// 31 characters of base64url over the message id encrypted (AES-128, one block: opaque, nothing
/// readable in it), the link's number in the message, and 48 bits of HMAC-SHA256 over both (a forged
/// or altered token is refused). Keys are derived from the link secret of a version (`LinkKeys`):
/// version 1 tokens are those 31 characters, later versions carry the version in a first character.
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
        guard let id = ULID.bytes(messageId), (0...255).contains(index), let cipher = cipher(keys.version) else { return nil }
        var body = cipher.encrypt(id)
        body.append(UInt8(index))
        let token = Base64URL.encode(body + mac(keys.version, body)!)
        return keys.version == 1 ? token : String(UnicodeScalar(Base64URL.alphabet[keys.version])) + token
    }

    public func clickURL(messageId: String, index: Int) -> String? { token(messageId: messageId, index: index).map { "\(publicURL)/l/\($0)" } }
    public func openURL(messageId: String) -> String? { token(messageId: messageId, index: Self.openPixel).map { "\(publicURL)/o/\($0).gif" } }

    /// The message and link a genuine token names; nil for anything forged, altered or malformed.
    public func verify(_ token: String) -> (messageId: String, index: Int)? {
        var version = 1
        var body31 = Substring(token)
        if token.utf8.count == 32, let first = token.utf8.first {
            version = Int(Base64URL.values[Int(first)])
            guard version >= 2 else { return nil }
            body31 = token.dropFirst()
        }
        guard body31.utf8.count == 31, let bytes = Base64URL.decode(String(body31)), bytes.count == 23, let cipher = cipher(version),
            let expected = mac(version, Array(bytes[0..<17]))
        else { return nil }
        let body = Array(bytes[0..<17])
        guard ConstantTime.equals(Array(bytes[17..<23]), expected), let id = ULID.string(cipher.decrypt(Array(body[0..<16]))) else { return nil }
        return (id, Int(body[16]))
    }

    private func cipher(_ v: Int) -> AES128Block? { keys.key(v, "scrm link cipher", length: 16).map(AES128Block.init(key:)) }
    private func mac(_ v: Int, _ body: [UInt8]) -> [UInt8]? { keys.key(v, "scrm link mac").map { Array(HMAC.sha256(key: $0, data: body).prefix(6)) } }
}
