/// Sortable unique ids (ULID: 48-bit milliseconds + 80 random bits, Crockford base32, 26 characters).
/// Ids made later sort later, so "the older customer" is the smaller id.
public enum ULID {
    private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    public static func make(milliseconds: Int64) -> String {
        // 80 random bits from the system CSPRNG (getrandom), cheaper per call than OpenSSL's RAND_bytes.
        var rng = SystemRandomNumberGenerator()
        let r1 = rng.next()
        let r2 = UInt16(truncatingIfNeeded: rng.next())
        var random = (0..<8).map { UInt8(truncatingIfNeeded: r1 >> (8 * $0)) }
        random += [UInt8(truncatingIfNeeded: r2 >> 8), UInt8(truncatingIfNeeded: r2)]
        return make(milliseconds: milliseconds, randomBits: random)
    }

    /// An id whose 80 "random" bits are given (the first 10 bytes), e.g. a digest: the same inputs
    /// always make the same id (a campaign's message to a customer).
    public static func make(milliseconds: Int64, randomBits: [UInt8]) -> String {
        var value = [UInt8](repeating: 0, count: 16)
        for k in 0..<6 { value[k] = UInt8(truncatingIfNeeded: milliseconds >> (8 * (5 - k))) }
        for k in 0..<10 { value[6 + k] = k < randomBits.count ? randomBits[k] : 0 }
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

    /// The 16 bytes an id stands for; nil when it is not a valid id.
    public static func bytes(_ s: String) -> [UInt8]? {
        guard isValid(s) else { return nil }
        var value = [UInt8](repeating: 0, count: 16)
        for symbol in s.utf8 {
            let digit = UInt8(alphabet.firstIndex(of: symbol)!)
            // value = value << 5 | digit, over 128 bits (the first symbol's top 2 bits fall off)
            var carry = digit
            for j in stride(from: 15, through: 0, by: -1) {
                let b = value[j]
                value[j] = (b << 5) | carry
                carry = b >> 3
            }
        }
        return value
    }

    /// The id written for 16 bytes (the inverse of `bytes`).
    public static func string(_ bytes: [UInt8]) -> String? {
        guard bytes.count == 16 else { return nil }
        let ms = bytes[0..<6].reduce(Int64(0)) { $0 << 8 | Int64($1) }
        return make(milliseconds: ms, randomBits: Array(bytes[6..<16]))
    }

    public static func isValid(_ s: String) -> Bool {
        s.utf8.count == 26 && s.utf8.allSatisfy { alphabet.contains($0) }
    }
}
