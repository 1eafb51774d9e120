import GatewayCrypto

/// Sortable unique ids (ULID: 48-bit milliseconds + 80 random bits, Crockford base32, 26 characters).
/// Ids made later sort later, so "the older customer" is the smaller id.
public enum CustomerID {
    private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    public static func make(milliseconds: Int64) -> String {
        let random = SecureRandom.bytes(10)
        var value: [UInt8] = (0..<6).map { UInt8(truncatingIfNeeded: milliseconds >> (8 * (5 - $0))) } + random
        // 128 bits -> 26 symbols of 5 bits (the first carries 3).
        var out = [UInt8](repeating: 0, count: 26)
        for k in stride(from: 25, through: 0, by: -1) {
            out[k] = alphabet[Int(value[15] & 0x1f)]
            // shift the 128-bit big-endian value right by 5
            var carry: UInt8 = 0
            for j in 0..<16 {
                let b = value[j]
                value[j] = (b >> 5) | carry
                carry = b << 3
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func isValid(_ s: String) -> Bool {
        s.utf8.count == 26 && s.utf8.allSatisfy { alphabet.contains($0) }
    }
}
