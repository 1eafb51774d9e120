import Foundation
import RedisClient

/// A real redis-server on a free loopback port, with its own data directory, for one test case.
public final class RedisTestServer: @unchecked Sendable {
    public let port: Int
    public let directory: URL
    private var pid: pid_t = 0
    /// More redis-server options (`--requirepass`, `--unixsocket`, ...).
    let extraArguments: [String]

    public init(extraArguments: [String] = []) throws {
        self.extraArguments = extraArguments
        port = try Self.freePort()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("scrm-redis-\(port)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try start()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    public var configuration: RedisConfiguration { RedisConfiguration(host: "127.0.0.1", port: port, connections: 2, connectTimeoutMs: 500, commandTimeoutMs: 2000) }
    public var url: String { "redis://127.0.0.1:\(port)" }

    /// Starts (or restarts) the server on the same port and data directory. AOF is on, so a restart keeps data.
    public func start() throws {
        let args = [
            Self.redisServerPath(), "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
            "--appendfsync", "always", "--dir", directory.path, "--daemonize", "no", "--loglevel", "warning",
            "--logfile", directory.appendingPathComponent("redis.log").path,
        ] + extraArguments
        pid = try LocalProcess.spawn(args)
        try LocalProcess.waitUntil(port: port, accepting: true, what: "redis-server")
    }

    public var isRunning: Bool { pid > 0 }

    /// Stops the server (SIGTERM, then SIGKILL after 5 s) and reaps it.
    public func stop() {
        LocalProcess.terminate(pid)
        pid = 0
    }

    /// Kills the server without a chance to save (SIGKILL); AOF with fsync always keeps what was acknowledged.
    public func crash() {
        guard pid > 0 else { return }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        pid = 0
    }

    /// Freezes the server (SIGSTOP) until `resume`: it keeps its connections but answers nothing.
    public func pause() { if pid > 0 { kill(pid, SIGSTOP) } }

    public func resume() { if pid > 0 { kill(pid, SIGCONT) } }

    static func redisServerPath() -> String {
        for candidate in ["/usr/bin/redis-server", "/usr/local/bin/redis-server"] where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        fatalError("redis-server not found: run scripts/test, which installs it")
    }

    /// Asks the kernel for a free loopback port.
    public static func freePort() throws -> Int { try LocalProcess.freePort() }
}
