import Foundation
import GatewayCrypto

/// Tracked links and open pixels: `{publicURL}/l/{token}` and `{publicURL}/o/{token}.gif`. A token is
/// 31 characters of base64url over the message id encrypted (AES-128, one block: opaque, nothing
/// readable in it), the link's number in the message, and 48 bits of HMAC-SHA256 over both (a forged
/// or altered token is refused). Keys are derived from `outbound.linkSecret`.
public struct LinkTokens: Sendable {
    let cipher: AES128Block
    let macKey: [UInt8]
    public let publicURL: String
    /// The number an open pixel carries instead of a link's.
    public static let openPixel = 255

    public init?(secret: String?, publicURL: String) {
        guard let secret, secret.utf8.count >= 16 else { return nil }
        let key = Array(secret.utf8)
        cipher = AES128Block(key: Array(HMAC.sha256(key: key, data: Array("scrm link cipher".utf8)).prefix(16)))
        macKey = HMAC.sha256(key: key, data: Array("scrm link mac".utf8))
        self.publicURL = publicURL
    }

    public func token(messageId: String, index: Int) -> String? {
        guard let id = CustomerID.bytes(messageId), (0...255).contains(index) else { return nil }
        var body = cipher.encrypt(id)
        body.append(UInt8(index))
        return Base64URL.encode(body + mac(body))
    }

    public func clickURL(messageId: String, index: Int) -> String? { token(messageId: messageId, index: index).map { "\(publicURL)/l/\($0)" } }
    public func openURL(messageId: String) -> String? { token(messageId: messageId, index: Self.openPixel).map { "\(publicURL)/o/\($0).gif" } }

    /// The message and link a genuine token names; nil for anything forged, altered or malformed.
    public func verify(_ token: String) -> (messageId: String, index: Int)? {
        guard token.utf8.count == 31, let bytes = Base64URL.decode(token), bytes.count == 23 else { return nil }
        let body = Array(bytes[0..<17])
        guard ConstantTime.equals(Array(bytes[17..<23]), mac(body)), let id = CustomerID.string(cipher.decrypt(Array(body[0..<16]))) else { return nil }
        return (id, Int(body[16]))
    }

    private func mac(_ body: [UInt8]) -> [UInt8] { Array(HMAC.sha256(key: macKey, data: body).prefix(6)) }
}
