/// `application/x-www-form-urlencoded` bodies.
public enum FormEncoding {
    /// `name=value&...` with every byte but RFC 3986's unreserved ones percent-encoded (a space is
    /// `%20`, as the signed provider APIs want it).
    public static func encode(_ pairs: [(String, String)]) -> String {
        var out = [UInt8]()
        out.reserveCapacity(pairs.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count + 2 } * 2)
        for (i, (name, value)) in pairs.enumerated() {
            if i > 0 { out.append(UInt8(ascii: "&")) }
            append(name, to: &out)
            out.append(UInt8(ascii: "="))
            append(value, to: &out)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// One component, percent-encoded as in `encode`.
    public static func percentEncode(_ s: String) -> String {
        var out = [UInt8]()
        out.reserveCapacity(s.utf8.count * 3)
        append(s, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    private static func append(_ s: String, to out: inout [UInt8]) {
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.append(b)
            default:
                out += [UInt8(ascii: "%"), hexDigits[Int(b >> 4)], hexDigits[Int(b & 0x0F)]]
            }
        }
    }

    /// Every `name=value` pair in order, repeated names included (`+` is a space). A part whose
    /// percent-encoding is broken, or does not decode to UTF-8, is kept as it was sent.
    public static func pairs(_ text: String) -> [(name: String, value: String)] {
        var out = [(name: String, value: String)]()
        var utf8 = text.utf8[...]
        while !utf8.isEmpty {
            let end = utf8.firstIndex(of: UInt8(ascii: "&")) ?? utf8.endIndex
            let pair = utf8[..<end]
            utf8 = end == utf8.endIndex ? utf8[end...] : utf8[utf8.index(after: end)...]
            if pair.isEmpty { continue }
            if let eq = pair.firstIndex(of: UInt8(ascii: "=")) {
                out.append((decode(pair[..<eq]), decode(pair[pair.index(after: eq)...])))
            } else {
                out.append((decode(pair), ""))
            }
        }
        return out
    }

    /// One name or value: `+` as a space, `%XX` as its byte (bytes, not Foundation: bodies are read on every webhook).
    static func decode(_ part: Substring.UTF8View) -> String {
        guard part.contains(where: { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "%") }) else { return String(Substring(part)) }
        var bytes = [UInt8]()
        bytes.reserveCapacity(part.count)
        var i = part.startIndex
        while i < part.endIndex {
            let b = part[i]
            if b == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else if b == UInt8(ascii: "%") {
                let h = part.index(after: i)
                guard h < part.endIndex, part.index(after: h) < part.endIndex, let hi = hex(part[h]), let lo = hex(part[part.index(after: h)]) else {
                    return String(Substring(part))
                }
                bytes.append(hi << 4 | lo)
                i = part.index(h, offsetBy: 2)
                continue
            } else {
                bytes.append(b)
            }
            i = part.index(after: i)
        }
        return String(validating: bytes, as: UTF8.self) ?? String(Substring(part))
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// `a=1&b=%20+c` -> ["a": "1", "b": "  c"]; a repeated name keeps the last value (for reading
    /// fields; signatures use `pairs`, which keeps them all).
    public static func decode(_ text: String) -> [String: String] { fields(pairs(text)) }

    /// Pairs already read, as fields: a repeated name keeps the last value (a hidden `false` before
    /// its checkbox reads as the checkbox).
    public static func fields(_ pairs: [(name: String, value: String)]) -> [String: String] {
        var out = [String: String]()
        for (name, value) in pairs { out[name] = value }
        return out
    }
}
