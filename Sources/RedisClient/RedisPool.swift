import Logging

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
            RedisWorker(connection: RedisConnection(configuration), name: "redis-\(i)")
        }
    }

    deinit { shutdown() }

    /// Runs one command; an error reply is thrown as `RedisError(.server)`.
    @discardableResult
    public func send(_ args: String...) async throws -> RedisValue { try await send(args) }

    @discardableResult
    public func send(_ args: [String]) async throws -> RedisValue {
        let reply = try await worker().submit([args])[0]
        if case .error(let message) = reply { throw RedisError.reply(command: args[0], message: message) }
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
            if case .error(let message) = reply { throw RedisError.reply(command: commands[i][0], message: message) }
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
