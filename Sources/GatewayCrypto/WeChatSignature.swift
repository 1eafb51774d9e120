/// WeChat and WeCom request signatures.
///
/// Plain mode: `signature = sha1(sort([token, timestamp, nonce]).joined())`.
/// Safe mode: `msg_signature = sha1(sort([token, timestamp, nonce, Encrypt]).joined())`.
/// Parts are sorted by their UTF-8 bytes, as Tencent's samples do.
public enum WeChatSignature {
    public static func compute(_ parts: [String]) -> String {
        let sorted = parts.map { Array($0.utf8) }.sorted { $0.lexicographicallyPrecedes($1) }
        return Hex.encode(Digest.sha1(sorted.joined()))
    }

    /// Constant-time check of a hex signature (case-insensitive, as some clients send upper case).
    public static func verify(_ signature: String, parts: [String]) -> Bool {
        ConstantTime.equals(compute(parts), signature.lowercased())
    }
}
