import COpenSSL
import Foundation

/// WeChat / WeCom safe-mode message encryption.
///
/// Key = base64(EncodingAESKey + "="), 32 bytes; IV = the first 16 key bytes; AES-256-CBC with PKCS#7
/// padding to a 32-byte block, added and removed here (OpenSSL's own padding is 16-byte and off).
/// Plaintext = 16 random bytes | 4-byte big-endian length | message | appId (WeCom: corpId).
///
/// ```swift
/// let cipher = try WeChatCipher(encodingAESKey: key, appId: "wxb11529c136998cb6")
/// let xml = try cipher.decrypt(base64: encrypted)
/// ```
public struct WeChatCipher: Sendable {
    public static let blockSize = 32
    public let appId: String
    private let key: [UInt8]

    public init(encodingAESKey: String, appId: String) throws {
        guard encodingAESKey.utf8.count == 43,
            let data = Data(base64Encoded: encodingAESKey + "="), data.count == 32
        else { throw CryptoError(.invalidKey, "EncodingAESKey must be 43 base64 characters") }
        self.key = Array(data)
        self.appId = appId
    }

    /// Decrypts a base64 `Encrypt` value and checks the appId trailer. Returns the message bytes.
    public func decrypt(base64: String) throws -> [UInt8] {
        guard let data = Data(base64Encoded: base64) else { throw CryptoError(.invalidBase64, "Encrypt is not base64") }
        let cipherText = Array(data)
        guard !cipherText.isEmpty, cipherText.count % 16 == 0 else {
            throw CryptoError(.invalidCiphertext, "ciphertext length \(cipherText.count) is not a positive multiple of 16")
        }
        let padded = try aes(cipherText, encrypt: false)
        let plain = try Self.unpad(padded)
        guard plain.count >= 20 else { throw CryptoError(.invalidLength, "plaintext shorter than its header") }
        let length = plain[16..<20].reduce(0) { ($0 << 8) | Int($1) }
        guard length <= plain.count - 20 else { throw CryptoError(.invalidLength, "length field exceeds plaintext") }
        let message = Array(plain[20..<(20 + length)])
        let trailer = plain[(20 + length)...]
        guard ConstantTime.equals(trailer, Array(appId.utf8)) else {
            throw CryptoError(.appIdMismatch, "appId trailer does not match the account")
        }
        return message
    }

    /// Encrypts a message with a fresh CSPRNG prefix (or the given 16 bytes, for test vectors).
    public func encrypt(_ message: [UInt8], random: [UInt8]? = nil) throws -> String {
        let prefix = random ?? SecureRandom.bytes(16)
        precondition(prefix.count == 16, "random prefix must be 16 bytes")
        var plain = prefix
        let n = UInt32(message.count)
        plain += [UInt8(n >> 24 & 0xff), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)]
        plain += message
        plain += Array(appId.utf8)
        return Data(try aes(Self.pad(plain), encrypt: true)).base64EncodedString()
    }

    public func encrypt(_ message: String) throws -> String { try encrypt(Array(message.utf8)) }

    static func pad(_ bytes: [UInt8]) -> [UInt8] {
        let p = blockSize - bytes.count % blockSize
        return bytes + [UInt8](repeating: UInt8(p), count: p)
    }

    static func unpad(_ bytes: [UInt8]) throws -> [UInt8] {
        guard let last = bytes.last, (1...blockSize).contains(Int(last)), Int(last) <= bytes.count else {
            throw CryptoError(.invalidPadding, "pad value out of range 1...\(blockSize)")
        }
        let p = Int(last)
        // Check every pad byte without an early exit.
        var diff: UInt8 = 0
        for b in bytes[(bytes.count - p)...] { diff |= b ^ last }
        guard diff == 0 else { throw CryptoError(.invalidPadding, "pad bytes are inconsistent") }
        return Array(bytes[..<(bytes.count - p)])
    }

    private func aes(_ input: [UInt8], encrypt: Bool) throws -> [UInt8] {
        guard let ctx = EVP_CIPHER_CTX_new() else { throw CryptoError(.cipherFailure, "EVP_CIPHER_CTX_new") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        let iv = Array(key[0..<16])
        let initOK = key.withUnsafeBufferPointer { k in
            iv.withUnsafeBufferPointer { v in
                EVP_CipherInit_ex(ctx, EVP_aes_256_cbc(), nil, k.baseAddress, v.baseAddress, encrypt ? 1 : 0)
            }
        }
        guard initOK == 1, EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 else {
            throw CryptoError(.cipherFailure, "cipher init failed")
        }
        var out = [UInt8](repeating: 0, count: input.count + 32)
        var outLen: Int32 = 0
        var finalLen: Int32 = 0
        let ok = input.withUnsafeBufferPointer { inp in
            out.withUnsafeMutableBufferPointer { o -> Bool in
                guard EVP_CipherUpdate(ctx, o.baseAddress, &outLen, inp.baseAddress, Int32(inp.count)) == 1 else { return false }
                return EVP_CipherFinal_ex(ctx, o.baseAddress! + Int(outLen), &finalLen) == 1
            }
        }
        guard ok else { throw CryptoError(.invalidCiphertext, "AES-256-CBC failed") }
        return Array(out.prefix(Int(outLen + finalLen)))
    }
}
