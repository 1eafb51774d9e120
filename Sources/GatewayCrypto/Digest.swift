import COpenSSL

/// SHA digests over OpenSSL's one-shot EVP_Digest.
public enum Digest {
    // OpenSSL 3 looks the algorithm up in its provider on every call made with EVP_sha1(); an explicitly
    // fetched EVP_MD skips that lookup. Fetched once, never freed (process lifetime), thread-safe to share.
    nonisolated(unsafe) static let sha1MD = EVP_MD_fetch(nil, "SHA1", nil)
    nonisolated(unsafe) static let sha256MD = EVP_MD_fetch(nil, "SHA256", nil)

    public static func sha1(_ data: some Collection<UInt8>) -> [UInt8] { digest(sha1MD, data) }
    public static func sha256(_ data: some Collection<UInt8>) -> [UInt8] { digest(sha256MD, data) }

    public static func sha1Hex(_ string: String) -> String { Hex.encode(sha1(Array(string.utf8))) }

    private static func digest(_ md: OpaquePointer?, _ data: some Collection<UInt8>) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(scrm_evp_max_md_size()))
        let bytes = Array(data)
        let n = bytes.withUnsafeBytes { raw in
            out.withUnsafeMutableBufferPointer { scrm_digest(md, raw.baseAddress, raw.count, $0.baseAddress) }
        }
        precondition(n > 0, "EVP_Digest failed")
        return Array(out.prefix(Int(n)))
    }
}

/// HMAC over OpenSSL.
public enum HMAC {
    public static func sha1(key: some Collection<UInt8>, data: some Collection<UInt8>) -> [UInt8] {
        mac(Digest.sha1MD, key, data)
    }
    public static func sha256(key: some Collection<UInt8>, data: some Collection<UInt8>) -> [UInt8] {
        mac(Digest.sha256MD, key, data)
    }

    private static func mac(_ md: OpaquePointer?, _ key: some Collection<UInt8>, _ data: some Collection<UInt8>) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(scrm_evp_max_md_size()))
        let keyBytes = Array(key)
        let dataBytes = Array(data)
        let n = keyBytes.withUnsafeBytes { k in
            dataBytes.withUnsafeBufferPointer { d in
                out.withUnsafeMutableBufferPointer {
                    scrm_hmac(md, k.baseAddress, Int32(k.count), d.baseAddress, d.count, $0.baseAddress)
                }
            }
        }
        precondition(n > 0, "HMAC failed")
        return Array(out.prefix(Int(n)))
    }
}

public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Lowercase or uppercase hex to bytes; nil for an odd length or a non-hex character.
    public static func decode(_ hex: String) -> [UInt8]? {
        let u = Array(hex.utf8)
        guard u.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: c - 48
            case 97...102: c - 87
            case 65...70: c - 55
            default: nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(u.count / 2)
        var i = 0
        while i < u.count {
            guard let hi = nibble(u[i]), let lo = nibble(u[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}
