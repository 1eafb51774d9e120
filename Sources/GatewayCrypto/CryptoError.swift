/// Why a safe-mode payload was refused. Messages are safe to log; none carries key material.
public struct CryptoError: Error, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case invalidKey = "invalid_key"
        case invalidBase64 = "invalid_base64"
        case invalidCiphertext = "invalid_ciphertext"
        case invalidPadding = "invalid_padding"
        case invalidLength = "invalid_length"
        case appIdMismatch = "appid_mismatch"
        case cipherFailure = "cipher_failure"
    }

    public let code: Code
    public let detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String { "\(code.rawValue): \(detail)" }
}
