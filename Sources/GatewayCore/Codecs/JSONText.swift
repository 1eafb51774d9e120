/// Minimal JSON writing for hot paths (the ingest path builds one object per webhook).
public enum JSONText {
    public static func quote(_ s: String) -> String {
        var s = s
        return s.withUTF8 { bytes in
            // Fast path: nothing to escape.
            if !bytes.contains(where: needsEscape) { return "\"" + String(decoding: bytes, as: UTF8.self) + "\"" }
            var out = [UInt8]()
            out.reserveCapacity(bytes.count + 16)
            out.append(0x22)
            var k = 0
            while k < bytes.count {
                let b = bytes[k]
                switch b {
                case 0x22: out += [0x5C, 0x22]
                case 0x5C: out += [0x5C, 0x5C]
                case 0x0A: out += [0x5C, 0x6E]
                case 0x0D: out += [0x5C, 0x72]
                case 0x09: out += [0x5C, 0x74]
                case 0xE2 where k + 2 < bytes.count && bytes[k + 1] == 0x80 && (bytes[k + 2] == 0xA8 || bytes[k + 2] == 0xA9):
                    // U+2028 / U+2029: valid JSON, but not valid inside JavaScript strings.
                    out += Array("\\u202\(bytes[k + 2] == 0xA8 ? "8" : "9")".utf8)
                    k += 2
                case let c where c < 0x20:
                    let hex = Array("0123456789abcdef".utf8)
                    out += [0x5C, 0x75, 0x30, 0x30, hex[Int(c >> 4)], hex[Int(c & 0xF)]]
                default: out.append(b)
                }
                k += 1
            }
            out.append(0x22)
            return String(decoding: out, as: UTF8.self)
        }
    }

    private static func needsEscape(_ b: UInt8) -> Bool { b < 0x20 || b == 0x22 || b == 0x5C || b == 0xE2 }

    /// An object from ordered pairs whose values are already JSON.
    public static func object(_ pairs: [(String, String)]) -> String {
        var out = "{"
        out.reserveCapacity(pairs.reduce(2) { $0 + $1.0.utf8.count + $1.1.utf8.count + 4 })
        for (i, pair) in pairs.enumerated() {
            if i > 0 { out += "," }
            out += quote(pair.0)
            out += ":"
            out += pair.1
        }
        out += "}"
        return out
    }

    /// An object of string values, keys sorted so output is stable.
    public static func object(strings: [String: String]) -> String {
        object(strings.sorted { $0.key < $1.key }.map { ($0.key, quote($0.value)) })
    }
}
