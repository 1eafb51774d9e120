import GatewayCrypto

/// A Lua script with its SHA1, run through `RedisPool.eval` (EVALSHA, EVAL on NOSCRIPT).
public struct RedisScript: Sendable {
    public let name: String
    public let source: String
    public let sha1: String

    public init(name: String, source: String) {
        self.name = name
        self.source = source
        self.sha1 = Hex.encode(Digest.sha1(Array(source.utf8)))
    }
}
