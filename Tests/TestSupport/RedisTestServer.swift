import Foundation
import RedisClient

/// A real redis-server on a free loopback port, with its own data directory, for one test case.
public final class RedisTestServer: @unchecked Sendable {
    public let port: Int
    public let directory: URL
    private var pid: pid_t = 0

    public init() throws {
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
        ]
        pid = try Self.spawn(args)
        try waitUntil(accepting: true)
    }

    /// Stops the server (SIGTERM, then SIGKILL after 5 s) and reaps it.
    public func stop() {
        guard pid > 0 else { return }
        kill(pid, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<500 {
            if waitpid(pid, &status, WNOHANG) == pid { break }
            usleep(10_000)
        }
        if kill(pid, 0) == 0 {
            kill(pid, SIGKILL)
            waitpid(pid, &status, 0)
        }
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

    static func spawn(_ args: [String]) throws -> pid_t {
        var child: pid_t = 0
        var cArgs = args.map { strdup($0) } + [nil]
        defer { for a in cArgs { free(a) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        // Threads here may block signals; the child must start with an empty mask so SIGTERM stops it.
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let rc = posix_spawn(&child, args[0], &actions, &attr, &cArgs, environ)
        guard rc == 0 else { throw NSError(domain: "RedisTestServer", code: Int(rc), userInfo: [NSLocalizedDescriptionKey: "posix_spawn \(args[0]) failed"]) }
        return child
    }

    private func waitUntil(accepting: Bool) throws {
        for _ in 0..<200 {
            if Self.canConnect(port: port) == accepting { return }
            usleep(25_000)
        }
        throw NSError(domain: "RedisTestServer", code: 1, userInfo: [NSLocalizedDescriptionKey: "redis-server on \(port) did not start"])
    }

    static func redisServerPath() -> String {
        for candidate in ["/usr/bin/redis-server", "/usr/local/bin/redis-server"] where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        fatalError("redis-server not found: run scripts/test, which installs it")
    }

    static func canConnect(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        return rc == 0
    }

    /// Asks the kernel for a free loopback port.
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) { ptr in
            ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard bound else { throw NSError(domain: "RedisTestServer", code: 2) }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}
