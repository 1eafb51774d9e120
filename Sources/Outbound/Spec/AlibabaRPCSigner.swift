import Foundation
import GatewayCrypto

/// Alibaba Cloud's RPC signature (SignatureVersion 1.0), as Short Message Service checks it: the common
/// parameters are added, every parameter is percent-encoded (RFC 3986) and sorted by name,
/// `METHOD&%2F&encode(query)` is signed with HMAC-SHA1 under `secret + "&"`, and the base64 result
/// goes in `Signature`.
struct AlibabaRPCSigner {
    let accessKeyId: String
    let accessKeySecret: String

    func sign(method: String, parameters: [(String, String)], nowMs: Int64, nonce: String) -> [(String, String)] {
        var all = parameters.filter { $0.0 != "Signature" }
        let common = [
            ("AccessKeyId", accessKeyId), ("Format", "JSON"), ("SignatureMethod", "HMAC-SHA1"), ("SignatureNonce", nonce),
            ("SignatureVersion", "1.0"), ("Timestamp", ResolvedAdapter.iso8601(ms: nowMs)),
        ]
        for (key, value) in common where !all.contains(where: { $0.0 == key }) { all.append((key, value)) }
        all.sort { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) }
        let stringToSign = method + "&" + ResolvedAdapter.percentEncode("/") + "&" + ResolvedAdapter.percentEncode(ResolvedAdapter.formEncode(all))
        let mac = HMAC.sha1(key: Array((accessKeySecret + "&").utf8), data: Array(stringToSign.utf8))
        return all + [("Signature", Data(mac).base64EncodedString())]
    }
}
