import Dispatch
import GatewayCore
import GatewayCrypto
import RedisClient

/// Console operators (a name, a scrypt-hashed password, a role) and their sessions. Sign-in is
/// rate-limited per address and locks a name out after repeated failures; a session is a random
/// token whose SHA-256 names its record, with a CSRF token of its own, expiring when idle.
public struct OperatorStore: Sendable {
    let redis: RedisPool
    let policy: Policy

    public struct Policy: Sendable {
        public var sessionIdleMs: Int64 = 8 * 3_600_000
        public var sessionMaxMs: Int64 = 24 * 3_600_000
        public var maxFailures = 5
        public var lockoutMs: Int64 = 15 * 60_000
        public var attemptsPerMinute = 20
        public init() {}
    }

    public init(redis: RedisPool, policy: Policy = Policy()) {
        self.redis = redis
        self.policy = policy
    }

    public struct Operator: Sendable, Equatable {
        public let name: String
        public let role: Role
        public let grants: Set<Permission>
        public let createdAt: Int64
        public let createdBy: String
        public let disabledAt: Int64?
        public let lastLoginAt: Int64?
    }

    public struct Session: Sendable, Equatable {
        public let operatorName: String
        public let role: Role
        public let grants: Set<Permission>
        public let csrf: String
        public let createdAt: Int64
        public let expiresAt: Int64
    }

    public enum Login: Sendable, Equatable {
        /// The cookie value (shown once) and the session.
        case signedIn(token: String, Session)
        case invalid
        /// Too many failures for this name: retry after that many ms.
        case locked(retryAfterMs: Int64)
        /// Too many attempts from this address.
        case rateLimited(retryAfterMs: Int64)
    }

    public static func isName(_ name: String) -> Bool {
        (2...64).contains(name.utf8.count) && name.utf8.allSatisfy { (97...122).contains($0) || (48...57).contains($0) || [45, 46, 95, 64].contains($0) }
    }

    /// False when the name is taken.
    public func create(name: String, password: String, role: Role, grants: Set<Permission>, createdBy: String, nowMs: Int64) async throws -> Bool {
        let hash = await Self.offload { PasswordHash.make(password) }
        let key = Keys.operatorAccount(name)
        guard try await redis.send("HSETNX", key, "createdAt", String(nowMs)).int == 1 else { return false }
        _ = try await redis.pipelineChecked([
            ["HSET", key, "password", hash, "role", role.rawValue, "grants", grants.map(\.rawValue).sorted().joined(separator: ","), "createdBy", createdBy],
            ["ZADD", Keys.operators, String(nowMs), name],
        ])
        return true
    }

    public func get(_ name: String) async throws -> Operator? {
        guard Self.isName(name) else { return nil }
        return Self.operatorRecord(name, try await redis.send("HGETALL", Keys.operatorAccount(name)).dictionary)
    }

    public func list() async throws -> [Operator] {
        let names = try await redis.send("ZRANGE", Keys.operators, "0", "-1").strings
        guard !names.isEmpty else { return [] }
        let replies = try await redis.pipeline(names.map { ["HGETALL", Keys.operatorAccount($0)] })
        return zip(names, replies).compactMap { Self.operatorRecord($0, $1.dictionary) }
    }

    /// Disables the operator: no new sign-in, and every session of theirs is refused from the next call.
    public func disable(_ name: String, nowMs: Int64) async throws -> Operator? {
        guard let op = try await get(name) else { return nil }
        if op.disabledAt == nil { _ = try await redis.send("HSET", Keys.operatorAccount(name), "disabledAt", String(nowMs)) }
        return try await get(name)
    }

    public func login(name: String, password: String, address: String, nowMs: Int64) async throws -> Login {
        let addressKey = Keys.loginAttempts(address: address)
        let attempts = try await redis.pipelineChecked([["INCR", addressKey], ["PEXPIRE", addressKey, "60000", "NX"], ["PTTL", addressKey]])
        if (attempts[0].int ?? 0) > policy.attemptsPerMinute { return .rateLimited(retryAfterMs: Int64(max(1, attempts[2].int ?? 60_000))) }
        let failKey = Keys.loginFailures(operator: Self.isName(name) ? name : "-")
        let failures = try await redis.pipelineChecked([["GET", failKey], ["PTTL", failKey]])
        if (failures[0].string.flatMap(Int.init) ?? 0) >= policy.maxFailures { return .locked(retryAfterMs: Int64(max(1, failures[1].int ?? 1))) }

        let record = Self.isName(name) ? try await redis.send("HGETALL", Keys.operatorAccount(name)).dictionary : [:]
        // An unknown name costs the same scrypt as a known one, so timing does not tell which names exist.
        let stored = record["password"]
        let matches = await Self.offload { PasswordHash.verify(password, against: stored ?? Self.decoyHash) }
        guard matches, let op = Self.operatorRecord(name, record), op.disabledAt == nil else {
            let r = try await redis.pipelineChecked([["INCR", failKey], ["PEXPIRE", failKey, String(policy.lockoutMs), "NX"]])
            if (r[0].int ?? 0) >= policy.maxFailures { return .locked(retryAfterMs: policy.lockoutMs) }
            return .invalid
        }
        let token = Hex.encode(SecureRandom.bytes(32))
        let session = Session(
            operatorName: name, role: op.role, grants: op.grants, csrf: Hex.encode(SecureRandom.bytes(24)), createdAt: nowMs,
            expiresAt: nowMs + policy.sessionIdleMs)
        let key = Keys.operatorSession(Self.hash(token))
        _ = try await redis.pipelineChecked([
            ["DEL", failKey],
            ["HSET", key, "operator", name, "csrf", session.csrf, "createdAt", String(nowMs)],
            ["PEXPIRE", key, String(policy.sessionIdleMs)],
            ["HSET", Keys.operatorAccount(name), "lastLoginAt", String(nowMs)],
        ])
        return .signedIn(token: token, session)
    }

    /// The session a cookie names, with the operator's current role; nil when expired, signed out,
    /// past its maximum age, or the operator is disabled. Each use extends the idle expiry.
    public func session(token: String, nowMs: Int64) async throws -> Session? {
        guard token.utf8.count == 64, Hex.decode(token) != nil else { return nil }
        let key = Keys.operatorSession(Self.hash(token))
        let f = try await redis.send("HGETALL", key).dictionary
        guard let name = f["operator"], let csrf = f["csrf"], let created = f["createdAt"].flatMap(Int64.init), nowMs - created < policy.sessionMaxMs,
            let op = try await get(name), op.disabledAt == nil
        else { return nil }
        _ = try await redis.send("PEXPIRE", key, String(policy.sessionIdleMs))
        return Session(operatorName: name, role: op.role, grants: op.grants, csrf: csrf, createdAt: created, expiresAt: nowMs + policy.sessionIdleMs)
    }

    public func logout(token: String) async throws {
        guard token.utf8.count == 64 else { return }
        _ = try await redis.send("DEL", Keys.operatorSession(Self.hash(token)))
    }

    static func hash(_ token: String) -> String { Hex.encode(Digest.sha256(Array(token.utf8))) }

    /// A hash of a random password, made once per process, checked against for unknown names.
    static let decoyHash = PasswordHash.make(Hex.encode(SecureRandom.bytes(16)))

    /// Runs scrypt off the cooperative threads (it takes about 0.1 s of CPU).
    static func offload<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in DispatchQueue.global().async { continuation.resume(returning: work()) } }
    }

    static func operatorRecord(_ name: String, _ f: [String: String]) -> Operator? {
        guard f["password"] != nil, let role = f["role"].flatMap(Role.init(rawValue:)), let created = f["createdAt"].flatMap(Int64.init) else { return nil }
        return Operator(
            name: name, role: role, grants: Set((f["grants"] ?? "").split(separator: ",").compactMap { Permission(rawValue: String($0)) }), createdAt: created,
            createdBy: f["createdBy"] ?? "", disabledAt: f["disabledAt"].flatMap(Int64.init), lastLoginAt: f["lastLoginAt"].flatMap(Int64.init))
    }
}
