import Foundation

/// Child processes and loopback ports for the servers tests start (redis-server, the SMTP sink).
public enum LocalProcess {
    /// Starts `args[0]` with `args`, stdio to /dev/null, and an empty signal mask; with `environment`,
    /// that environment instead of this process's.
    public static func spawn(_ args: [String], environment: [String: String]? = nil) throws -> pid_t {
        var child: pid_t = 0
        var cArgs = args.map { strdup($0) } + [nil]
        defer { for a in cArgs { free(a) } }
        var cEnv = (environment ?? [:]).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for e in cEnv { free(e) } }
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
        let rc = environment == nil
            ? posix_spawn(&child, args[0], &actions, &attr, &cArgs, environ)
            : posix_spawn(&child, args[0], &actions, &attr, &cArgs, &cEnv)
        guard rc == 0 else { throw NSError(domain: "LocalProcess", code: Int(rc), userInfo: [NSLocalizedDescriptionKey: "posix_spawn \(args[0]) failed"]) }
        return child
    }

    /// SIGTERM, then SIGKILL after 5 s; reaps the child.
    public static func terminate(_ pid: pid_t) {
        guard pid > 0 else { return }
        kill(pid, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<500 {
            if waitpid(pid, &status, WNOHANG) == pid { return }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
        waitpid(pid, &status, 0)
    }

    public static func canConnect(port: Int) -> Bool {
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
        guard bound else { throw NSError(domain: "LocalProcess", code: 2) }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Waits until something accepts connections on `port` (or stops accepting, with `accepting: false`).
    public static func waitUntil(port: Int, accepting: Bool, what: String) throws {
        for _ in 0..<400 {
            if canConnect(port: port) == accepting { return }
            usleep(25_000)
        }
        throw NSError(domain: "LocalProcess", code: 1, userInfo: [NSLocalizedDescriptionKey: "\(what) on port \(port) did not \(accepting ? "start" : "stop")"])
    }

    /// Runs `args` to the end and returns its exit status.
    public static func run(_ args: [String]) throws -> Int32 {
        let pid = try spawn(args)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
    }
}
