import Foundation

/// `application/x-www-form-urlencoded` bodies.
public enum FormEncoding {
    /// `a=1&b=%20+c` -> ["a": "1", "b": "  c"] (`+` is a space; a repeated name keeps the last value).
    public static func decode(_ text: String) -> [String: String] {
        var out = [String: String]()
        for pair in text.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String { String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(s) }
            out[decode(kv[0])] = kv.count > 1 ? decode(kv[1]) : ""
        }
        return out
    }
}
