import GatewayCrypto

/// A Redis Functions library assembled from Lua sources, with a version taken from its text, so that
/// two releases of the gateway can run side by side on one Redis (a rolling deploy): each loads its
/// own `<name>_<version>` library and calls its own `<function>_<version>` functions.
///
/// The sources register their functions with `register('name', function(keys, args) ... end)`; the
/// header this type writes defines `register` to add the version. Called through `RedisPool.fcall`,
/// which loads the library (`FUNCTION LOAD REPLACE`) when Redis does not hold it yet (first call,
/// restart without persistence, `FUNCTION FLUSH`).
///
/// ```swift
/// let library = RedisFunctionLibrary(name: "scrm", sources: [base, customers])
/// try await redis.loadLibrary(library)
/// let reply = try await redis.fcall(library, "customer_patch", keys: [k], args: [a])
/// ```
public struct RedisFunctionLibrary: Sendable {
    public let name: String
    /// The first 12 hex digits of the SHA-1 of the joined sources.
    public let version: String
    /// The text given to `FUNCTION LOAD`.
    public let code: String

    public init(name: String, sources: [String]) {
        let body = sources.joined(separator: "\n")
        version = String(Hex.encode(Digest.sha1(Array(body.utf8))).prefix(12))
        self.name = name
        code = """
            #!lua name=\(name)_\(version)
            local function register(fname, fn) redis.register_function(fname .. '_\(version)', fn) end
            \(body)
            """
    }

    /// The name to `FCALL` for one of the library's functions.
    public func function(_ name: String) -> String { "\(name)_\(version)" }
}

extension RedisPool {
    /// Loads (or reloads) the library, on every master of a cluster (replicas get it from their master);
    /// the same version loaded twice is harmless.
    public func loadLibrary(_ library: RedisFunctionLibrary) async throws {
        for (endpoint, replies) in try await onEachMaster([["FUNCTION", "LOAD", "REPLACE", library.code]]) {
            if case .error(let message) = replies[0] {
                throw RedisError.reply(command: "FUNCTION LOAD \(library.name)", message: isCluster ? "\(endpoint): \(message)" : message)
            }
        }
    }

    /// Calls one function of the library, loading the library first when Redis does not have it (on a
    /// cluster, a node added or promoted without it).
    public func fcall(_ library: RedisFunctionLibrary, _ function: String, keys: [String], args: [String]) async throws -> RedisValue {
        let command = ["FCALL", library.function(function), String(keys.count)] + keys + args
        do {
            return try await send(command)
        } catch let error as RedisError where error.kind == .server && error.message.contains("Function not found") {
            try await loadLibrary(library)
            return try await send(command)
        } catch let error as RedisError where error.kind == .server {
            throw RedisError(.server, command: "FCALL \(function)", message: error.message)
        }
    }

    /// Calls one function of the library many times in one pipeline (on a cluster, split by node and
    /// sent in parallel), loading the library where a node lacks it and calling those again. Replies
    /// in order; the first error reply is thrown (the calls before and after it have run).
    public func fcallAll(_ library: RedisFunctionLibrary, _ function: String, calls: [(keys: [String], args: [String])]) async throws -> [RedisValue] {
        let commands = calls.map { ["FCALL", library.function(function), String($0.keys.count)] + $0.keys + $0.args }
        var replies = try await pipeline(commands)
        let missing = replies.indices.filter { if case .error(let m) = replies[$0] { return m.contains("Function not found") } else { return false } }
        if !missing.isEmpty {
            try await loadLibrary(library)
            for (i, reply) in zip(missing, try await pipeline(missing.map { commands[$0] })) { replies[i] = reply }
        }
        for reply in replies {
            if case .error(let message) = reply { throw RedisError(.server, command: "FCALL \(function)", message: message) }
        }
        return replies
    }
}
