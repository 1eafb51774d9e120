import GatewayCore
import GatewayCrypto
import RedisClient

/// Signed callbacks from providers and CRMs are applied once: the first claims its signature for the
/// replay window, a second with the same signature is refused. A claim whose callback then fails to
/// apply is released, so the sender's retry goes through.
public struct ReplayGuard: Sendable {
    let redis: RedisPool
    let ttlSeconds: Int

    public init(redis: RedisPool, ttlSeconds: Int) {
        self.redis = redis
        self.ttlSeconds = max(1, ttlSeconds)
    }

    /// False when this signature was already used inside the window.
    public func claim(scope: String, signature: String) async throws -> Bool {
        try await redis.send("SET", key(scope, signature), "1", "NX", "EX", String(ttlSeconds)).isNull == false
    }

    public func release(scope: String, signature: String) async {
        _ = try? await redis.send("DEL", key(scope, signature))
    }

    /// Claims, runs `apply`, and releases the claim if `apply` throws.
    public func once<T: Sendable>(scope: String, signature: String, _ apply: () async throws -> T) async throws -> T? {
        guard try await claim(scope: scope, signature: signature) else { return nil }
        do { return try await apply() } catch {
            await release(scope: scope, signature: signature)
            throw error
        }
    }

    func key(_ scope: String, _ signature: String) -> String { Keys.webhookSeen(scope: scope, id: Hex.encode(Digest.sha256(Array(signature.utf8)))) }
}
