import COpenSSL

/// ECDSA P-256 with SHA-256 over OpenSSL: how SendGrid signs its Event Webhook.
public enum ECDSA {
    /// True when `signature` (DER) is `publicKey`'s (DER SubjectPublicKeyInfo) over `message`.
    public static func verifyP256SHA256(publicKey: [UInt8], message: [UInt8], signature: [UInt8]) -> Bool {
        guard !publicKey.isEmpty, !signature.isEmpty else { return false }
        return publicKey.withUnsafeBufferPointer { k in
            message.withUnsafeBufferPointer { m in
                signature.withUnsafeBufferPointer { s in
                    scrm_ecdsa_sha256_verify(k.baseAddress, k.count, m.baseAddress, m.count, s.baseAddress, s.count) == 1
                }
            }
        }
    }

    /// A fresh key pair, DER encoded: what a provider holds (tests and fakes sign with it).
    public static func generateP256() -> (publicKey: [UInt8], privateKey: [UInt8]) {
        var pub = [UInt8](repeating: 0, count: 512)
        var priv = [UInt8](repeating: 0, count: 512)
        var pubLen: Int32 = 0
        var privLen: Int32 = 0
        let ok = scrm_ec_p256_generate(&pub, &pubLen, &priv, &privLen)
        precondition(ok == 1, "P-256 key generation failed")
        return (Array(pub.prefix(Int(pubLen))), Array(priv.prefix(Int(privLen))))
    }

    public static func signP256SHA256(privateKey: [UInt8], message: [UInt8]) -> [UInt8] {
        var sig = [UInt8](repeating: 0, count: 128)
        let n = privateKey.withUnsafeBufferPointer { k in
            message.withUnsafeBufferPointer { m in scrm_ecdsa_sha256_sign(k.baseAddress, k.count, m.baseAddress, m.count, &sig, sig.count) }
        }
        precondition(n > 0, "ECDSA signing failed")
        return Array(sig.prefix(Int(n)))
    }
}
