import COpenSSL

/// Operator passwords, hashed with scrypt (OpenSSL's EVP_PBE_scrypt): `scrypt$<log2 N>$<r>$<p>$<salt hex>$<hash hex>`.
/// The parameters travel with the hash, so they can be raised later without breaking stored ones.
public enum PasswordHash {
    /// N = 2^15, r = 8, p = 1: 32 MiB and about 0.1 s per hash (OWASP's scrypt minimum is 2^17 with p = 1
    /// at r = 8 for 128 MiB; this stays friendly to a 2-core machine and is raised by changing logN).
    public static let logN = 15
    public static let r = 8
    public static let p = 1

    public static func make(_ password: String, logN: Int = logN) -> String {
        let salt = SecureRandom.bytes(16)
        let hash = derive(Array(password.utf8), salt: salt, logN: logN, r: r, p: p)!
        return "scrypt$\(logN)$\(r)$\(p)$\(Hex.encode(salt))$\(Hex.encode(hash))"
    }

    /// True when `password` matches `stored`; a malformed `stored` never matches.
    public static func verify(_ password: String, against stored: String) -> Bool {
        let parts = stored.split(separator: "$").map(String.init)
        guard parts.count == 6, parts[0] == "scrypt", let logN = Int(parts[1]), (10...20).contains(logN), let r = Int(parts[2]), (1...16).contains(r),
            let p = Int(parts[3]), (1...4).contains(p), let salt = Hex.decode(parts[4]), let expected = Hex.decode(parts[5]), expected.count == 32
        else { return false }
        guard let hash = derive(Array(password.utf8), salt: salt, logN: logN, r: r, p: p) else { return false }
        return ConstantTime.equals(hash, expected)
    }

    static func derive(_ password: [UInt8], salt: [UInt8], logN: Int, r: Int, p: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: 32)
        let n = UInt64(1) << UInt64(logN)
        let maxMemory = UInt64(128 * r * p) * n + (1 << 20) * 16
        let ok = password.withUnsafeBufferPointer { pw in
            salt.withUnsafeBufferPointer { s in
                out.withUnsafeMutableBufferPointer { o in
                    pw.withMemoryRebound(to: CChar.self) { pwc in
                        EVP_PBE_scrypt(pwc.baseAddress, pw.count, s.baseAddress, s.count, n, UInt64(r), UInt64(p), maxMemory, o.baseAddress, 32)
                    }
                }
            }
        }
        return ok == 1 ? out : nil
    }
}
