import Foundation

/// `application/x-www-form-urlencoded` bodies.
public enum FormEncoding {
    /// Every `name=value` pair in order, repeated names included (`+` is a space).
    public static func pairs(_ text: String) -> [(name: String, value: String)] {
        text.split(separator: "&").map { pair in
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String { String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(s) }
            return (decode(kv[0]), kv.count > 1 ? decode(kv[1]) : "")
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
