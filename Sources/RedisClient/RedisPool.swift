import Logging

/// Where and how to reach Redis.
public struct RedisConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var connections: Int
    public var connectTimeoutMs: Int
    public var commandTimeoutMs: Int

    public init(host: String = "127.0.0.1", port: Int = 6379, connections: Int = 4, connectTimeoutMs: Int = 1000, commandTimeoutMs: Int = 2000) {
        self.host = host
        self.port = port
        self.connections = connections
        self.connectTimeoutMs = connectTimeoutMs
        self.commandTimeoutMs = commandTimeoutMs
    }

    /// Parses `redis://host:port` (a path or credentials are refused: hiredis 0.14 speaks neither TLS nor ACL here).
    public init(url: String, connections: Int = 4, connectTimeoutMs: Int = 1000, commandTimeoutMs: Int = 2000) throws {
        guard url.hasPrefix("redis://") else { throw RedisURLError(url: url, reason: "must start with redis://") }
        var rest = Substring(url.dropFirst("redis://".count))
        if rest.hasSuffix("/") || rest.hasSuffix("/0") { rest = rest.prefix { $0 != "/" } }
        guard !rest.contains("@"), !rest.contains("/") else { throw RedisURLError(url: url, reason: "only redis://host:port is supported") }
        let parts = rest.split(separator: ":", omittingEmptySubsequences: false)
        guard let host = parts.first, !host.isEmpty else { throw RedisURLError(url: url, reason: "missing host") }
        var port = 6379
        if parts.count == 2 {
            guard let p = Int(parts[1]), (1...65535).contains(p) else { throw RedisURLError(url: url, reason: "bad port") }
            port = p
        } else if parts.count > 2 {
            throw RedisURLError(url: url, reason: "bad host:port")
        }
        self.init(host: String(host), port: port, connections: connections, connectTimeoutMs: connectTimeoutMs, commandTimeoutMs: commandTimeoutMs)
    }
}

public struct RedisURLError: Error, CustomStringConvertible {
    public let url: String
    public let reason: String
    public var description: String { "invalid Redis URL: \(reason)" }
}

/// A pool of pipelining Redis connections, each on its own thread.
///
/// ```swift
/// let redis = RedisPool(RedisConfiguration(port: 6379))
/// try await redis.send("SET", "k", "v")
/// let replies = try await redis.pipeline([["INCR", "a"], ["GET", "a"]])
/// ```
public final class RedisPool: Sendable {
    private let workers: [RedisWorker]

    public init(_ configuration: RedisConfiguration) {
        workers = (0..<max(1, configuration.connections)).map { i in
            RedisWorker(
                connection: RedisConnection(
                    host: configuration.host, port: configuration.port,
                    connectTimeoutMs: configuration.connectTimeoutMs, commandTimeoutMs: configuration.commandTimeoutMs),
                name: "redis-\(i)")
        }
    }

    deinit { shutdown() }

    /// Runs one command; an error reply is thrown as `RedisError(.server)`.
    @discardableResult
    public func send(_ args: String...) async throws -> RedisValue { try await send(args) }

    @discardableResult
    public func send(_ args: [String]) async throws -> RedisValue {
        let reply = try await worker().submit([args])[0]
        if case .error(let message) = reply { throw RedisError(.server, command: args[0], message: message) }
        return reply
    }

    /// Runs commands back to back on one connection in one round trip. Error replies are returned in
    /// place (as `.error`), so a caller sees which command failed.
    public func pipeline(_ commands: [[String]]) async throws -> [RedisValue] {
        if commands.isEmpty { return [] }
        return try await worker().submit(commands)
    }

    /// Like `pipeline`, but throws the first error reply, naming its command.
    public func pipelineChecked(_ commands: [[String]]) async throws -> [RedisValue] {
        let replies = try await pipeline(commands)
        for (i, reply) in replies.enumerated() {
            if case .error(let message) = reply { throw RedisError(.server, command: commands[i][0], message: message) }
        }
        return replies
    }

    /// Runs a Lua script by SHA, loading it with EVAL when Redis answers NOSCRIPT.
    public func eval(_ script: RedisScript, keys: [String], args: [String]) async throws -> RedisValue {
        let tail = [String(keys.count)] + keys + args
        do {
            return try await send(["EVALSHA", script.sha1] + tail)
        } catch let error as RedisError where error.isNoScript {
            return try await send(["EVAL", script.source] + tail)
        } catch let error as RedisError where error.kind == .server {
            throw RedisError(.server, command: "EVALSHA \(script.name)", message: error.message)
        }
    }

    public func shutdown() { for w in workers { w.shutdown() } }

    private func worker() -> RedisWorker {
        // Least queued first; ties go to the first, which keeps batches large under light load.
        var best = workers[0]
        var bestDepth = best.depth
        if bestDepth == 0 { return best }
        for w in workers.dropFirst() {
            let d = w.depth
            if d < bestDepth {
                best = w
                bestDepth = d
                if d == 0 { break }
            }
        }
        return best
    }
}
