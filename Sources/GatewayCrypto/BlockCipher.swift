import COpenSSL

/// AES-128 on exactly one 16-byte block (ECB of one block: a keyed permutation), for tokens that must
/// be opaque and short: an id goes in, 16 bytes nobody can read come out, and back.
public struct AES128Block: Sendable {
    let key: [UInt8]
    // Fetched once (process lifetime, thread-safe to share): EVP_aes_128_ecb() would make OpenSSL 3
    // look the algorithm up in its provider on every call (see Digest).
    nonisolated(unsafe) static let cipher = EVP_CIPHER_fetch(nil, "AES-128-ECB", nil)

    /// `key`: 16 bytes.
    public init(key: [UInt8]) {
        precondition(key.count == 16, "AES-128 needs a 16-byte key")
        self.key = key
    }

    public func encrypt(_ block: [UInt8]) -> [UInt8] { run(block, encrypt: true) }
    public func decrypt(_ block: [UInt8]) -> [UInt8] { run(block, encrypt: false) }

    private func run(_ block: [UInt8], encrypt: Bool) -> [UInt8] {
        precondition(block.count == 16, "one 16-byte block")
        guard let ctx = EVP_CIPHER_CTX_new() else { preconditionFailure("EVP_CIPHER_CTX_new") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        var out = [UInt8](repeating: 0, count: 32)
        var outLen: Int32 = 0
        let ok = key.withUnsafeBufferPointer { k in
            block.withUnsafeBufferPointer { input in
                out.withUnsafeMutableBufferPointer { o in
                    EVP_CipherInit_ex(ctx, Self.cipher, nil, k.baseAddress, nil, encrypt ? 1 : 0) == 1
                        && EVP_CIPHER_CTX_set_padding(ctx, 0) == 1
                        && EVP_CipherUpdate(ctx, o.baseAddress, &outLen, input.baseAddress, 16) == 1
                }
            }
        }
        precondition(ok && outLen == 16, "AES-128 block failed")
        return Array(out.prefix(16))
    }
}
