import GatewayCore
import GatewayCrypto
import RedisClient

/// API keys with a role: created (the secret shown once, only its SHA-256 stored), listed, revoked,
/// and checked on every call. A key reads `scrm_<id>_<secret>`: the id finds the record in one
/// lookup, the secret is compared in constant time.
public struct APIKeyStore: Sendable {
    let redis: RedisPool

    public init(redis: RedisPool) { self.redis = redis }

    public struct Key: Sendable, Equatable {
        public let id: String
        public let name: String
        public let role: Role
        public let grants: Set<Permission>
        public let createdAt: Int64
        public let createdBy: String
        public let expiresAt: Int64?
        public let lastUsedAt: Int64?
        public let revokedAt: Int64?

        /// The first characters of the key, which is how people recognise it in a list.
        public var prefix: String { "scrm_\(id)" }
    }

    /// The secret, shown to its creator once.
    public struct Created: Sendable {
        public let key: Key
        public let secret: String
    }

    public enum Check: Sendable, Equatable {
        case valid(Key)
        case revoked, expired, unknown
    }

    static let idLength = 12
    /// lastUsedAt is written at most this often per key.
    static let lastUsedResolutionMs: Int64 = 60_000

    public func create(name: String, role: Role, grants: Set<Permission>, expiresAt: Int64?, createdBy: String, nowMs: Int64) async throws -> Created {
        let id = Hex.encode(SecureRandom.bytes(Self.idLength / 2))
        let secret = Hex.encode(SecureRandom.bytes(24))
        var fields = [
            "hash", Self.hash(secret), "name", name, "role", role.rawValue, "grants", grants.map(\.rawValue).sorted().joined(separator: ","),
            "createdAt", String(nowMs), "createdBy", createdBy,
        ]
        if let expiresAt { fields += ["expiresAt", String(expiresAt)] }
        _ = try await redis.pipelineChecked([["HSET", Keys.apiKey(id)] + fields, ["ZADD", Keys.apiKeys, String(nowMs), id]])
        let key = Key(id: id, name: name, role: role, grants: grants, createdAt: nowMs, createdBy: createdBy, expiresAt: expiresAt, lastUsedAt: nil, revokedAt: nil)
        return Created(key: key, secret: "scrm_\(id)_\(secret)")
    }

    /// Every key, newest first (revoked ones too, marked).
    public func list() async throws -> [Key] {
        let ids = try await redis.send("ZREVRANGE", Keys.apiKeys, "0", "-1").strings
        guard !ids.isEmpty else { return [] }
        let replies = try await redis.pipeline(ids.map { ["HGETALL", Keys.apiKey($0)] })
        return zip(ids, replies).compactMap { Self.key($0, $1.dictionary) }
    }

    public func get(_ id: String) async throws -> Key? {
        guard Self.isId(id) else { return nil }
        return Self.key(id, try await redis.send("HGETALL", Keys.apiKey(id)).dictionary)
    }

    /// Marks the key revoked; it is refused from the next call on. Nil when there is no such key.
    public func revoke(_ id: String, nowMs: Int64) async throws -> Key? {
        guard let key = try await get(id) else { return nil }
        if key.revokedAt == nil { _ = try await redis.send("HSET", Keys.apiKey(id), "revokedAt", String(nowMs)) }
        return try await get(id)
    }

    /// Checks a presented `scrm_<id>_<secret>`, and notes when it was last used.
    public func check(_ presented: String, nowMs: Int64) async throws -> Check {
        let parts = presented.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "scrm", Self.isId(String(parts[1])), !parts[2].isEmpty else { return .unknown }
        let id = String(parts[1])
        let fields = try await redis.send("HGETALL", Keys.apiKey(id)).dictionary
        guard let stored = fields["hash"], let key = Self.key(id, fields) else { return .unknown }
        guard ConstantTime.equals(Self.hash(String(parts[2])), stored) else { return .unknown }
        if key.revokedAt != nil { return .revoked }
        if let expires = key.expiresAt, expires <= nowMs { return .expired }
        if nowMs - (key.lastUsedAt ?? 0) >= Self.lastUsedResolutionMs {
            _ = try await redis.send("HSET", Keys.apiKey(id), "lastUsedAt", String(nowMs))
        }
        return .valid(key)
    }

    static func hash(_ secret: String) -> String { Hex.encode(Digest.sha256(Array(secret.utf8))) }

    static func isId(_ id: String) -> Bool { id.utf8.count == idLength && id.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) } }

    static func key(_ id: String, _ f: [String: String]) -> Key? {
        guard let role = f["role"].flatMap(Role.init(rawValue:)), let created = f["createdAt"].flatMap(Int64.init) else { return nil }
        let grants = Set((f["grants"] ?? "").split(separator: ",").compactMap { Permission(rawValue: String($0)) })
        return Key(
            id: id, name: f["name"] ?? "", role: role, grants: grants, createdAt: created, createdBy: f["createdBy"] ?? "",
            expiresAt: f["expiresAt"].flatMap(Int64.init), lastUsedAt: f["lastUsedAt"].flatMap(Int64.init), revokedAt: f["revokedAt"].flatMap(Int64.init))
    }
}
