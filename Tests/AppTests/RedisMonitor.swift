import Foundation
import RedisClient
import XCTest

/// `redis-cli MONITOR` against a test Redis while a scenario runs: every command, and inside each
/// `FCALL` the commands its function ran, to check that a function touches only the keys it was given.
final class RedisMonitor {
    let process = Process()
    let file: URL

    /// One command as MONITOR printed it: `lua` when a script or function ran it.
    struct Command {
        let lua: Bool
        let args: [String]
    }

    init(port: Int) throws {
        file = FileManager.default.temporaryDirectory.appendingPathComponent("monitor-\(UUID().uuidString).txt")
        FileManager.default.createFile(atPath: file.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-cli")
        process.arguments = ["-p", String(port), "monitor"]
        process.standardOutput = try FileHandle(forWritingTo: file)
        try process.run()
        // MONITOR answers OK once it is on: from then on every command is seen.
        for _ in 0..<200 where ((try? Data(contentsOf: file)) ?? Data()).isEmpty { usleep(10_000) }
    }

    /// Stops monitoring; the commands seen, in order.
    func stop() throws -> [Command] {
        usleep(200_000)  // the last commands' lines
        kill(process.processIdentifier, SIGKILL)  // redis-cli stays in MONITOR through a SIGTERM
        process.waitUntilExit()
        defer { try? FileManager.default.removeItem(at: file) }
        let text = try String(contentsOf: file, encoding: .utf8)
        return text.split(separator: "\n").compactMap(Self.parse)
    }

    /// `1796254504.615629 [0 lua] "SET" "k1" "v1"` (arguments quoted as sdscatrepr writes them).
    static func parse(_ line: Substring) -> Command? {
        guard let open = line.firstIndex(of: "["), let close = line.firstIndex(of: "]") else { return nil }
        let source = line[line.index(after: open)..<close]
        var args = [String]()
        var bytes = [UInt8]()
        var inQuote = false
        var i = line.utf8.index(after: close)
        let u = line.utf8
        while i < u.endIndex {
            let c = u[i]
            if !inQuote {
                if c == UInt8(ascii: "\"") {
                    inQuote = true
                    bytes = []
                }
            } else if c == UInt8(ascii: "\\") {
                i = u.index(after: i)
                guard i < u.endIndex else { break }
                switch u[i] {
                case UInt8(ascii: "n"): bytes.append(10)
                case UInt8(ascii: "r"): bytes.append(13)
                case UInt8(ascii: "t"): bytes.append(9)
                case UInt8(ascii: "a"): bytes.append(7)
                case UInt8(ascii: "b"): bytes.append(8)
                case UInt8(ascii: "x"):
                    let h = u.index(after: i), l = u.index(h, offsetBy: 1)
                    bytes.append(UInt8(String(decoding: [u[h], u[l]], as: UTF8.self), radix: 16) ?? 0)
                    i = l
                default: bytes.append(u[i])
                }
            } else if c == UInt8(ascii: "\"") {
                inQuote = false
                args.append(String(decoding: bytes, as: UTF8.self))
            } else {
                bytes.append(c)
            }
            i = u.index(after: i)
        }
        return args.isEmpty ? nil : Command(lua: source.hasSuffix(" lua"), args: args)
    }

    /// For each `FCALL` of a function whose name starts with one of `prefixes`, every key a command it
    /// ran names (per `COMMAND GETKEYS`) that is not among the keys the call passed: "function: key".
    static func undeclaredKeys(_ commands: [Command], functions prefixes: [String], redis: RedisPool) async throws -> (calls: Int, undeclared: [String]) {
        var checked = [(function: String, declared: Set<String>, command: [String])]()
        var current: (function: String, declared: Set<String>)?
        var calls = 0
        for c in commands {
            if !c.lua {
                current = nil
                guard c.args.count >= 3, c.args[0].uppercased() == "FCALL", prefixes.contains(where: { c.args[1].hasPrefix($0) }),
                    let n = Int(c.args[2]), c.args.count >= 3 + n
                else { continue }
                calls += 1
                current = (c.args[1], Set(c.args[3..<(3 + n)]))
            } else if let current {
                checked.append((current.function, current.declared, c.args))
            }
        }
        guard !checked.isEmpty else { return (calls, []) }
        let keys = try await redis.pipeline(checked.map { ["COMMAND", "GETKEYS"] + $0.command })
        var undeclared = Set<String>()
        for (check, reply) in zip(checked, keys) {
            for key in reply.strings where !check.declared.contains(key) { undeclared.insert("\(check.function): \(key)") }
        }
        return (calls, undeclared.sorted())
    }
}
