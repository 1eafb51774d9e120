import Foundation

/// A real SMTP server (python3-aiosmtpd via scripts/smtp-sink.py) on a free loopback port. Each
/// message it accepts is readable through `messages()`, parsed by Python's email package.
public final class SMTPTestServer: @unchecked Sendable {
    public let port: Int
    public let directory: URL
    private var pid: pid_t = 0

    /// With `user`, AUTH is required and only that user and password are accepted.
    public init(user: String? = nil, password: String? = nil) throws {
        port = try LocalProcess.freePort()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("scrm-smtp-\(port)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../scripts/smtp-sink.py").standardized.path
        var args = ["/usr/bin/python3", script, "--port", String(port), "--dir", directory.path]
        if let user, let password { args += ["--user", user, "--password", password] }
        pid = try LocalProcess.spawn(args)
        try LocalProcess.waitUntil(port: port, accepting: true, what: "smtp-sink.py (python3-aiosmtpd)")
    }

    deinit {
        LocalProcess.terminate(pid)
        try? FileManager.default.removeItem(at: directory)
    }

    public var url: String { "smtp://127.0.0.1:\(port)" }

    /// One accepted message: raw bytes and what the sink's parser read from them.
    public struct Received: @unchecked Sendable {
        public let raw: String
        public let info: [String: Any]
        public subscript(key: String) -> String? { info[key] as? String }
        public var recipients: [String] { info["rcpt_tos"] as? [String] ?? [] }
        public var defects: [String] { info["defects"] as? [String] ?? [] }
    }

    /// Accepted messages in arrival order.
    public func messages() -> [Received] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        let numbers = names.filter { $0.hasSuffix(".eml") }.compactMap { Int($0.dropLast(4)) }.sorted()
        return numbers.compactMap { n in
            let base = directory.appendingPathComponent(String(n))
            guard let raw = try? String(contentsOf: base.appendingPathExtension("eml"), encoding: .utf8),
                let data = try? Data(contentsOf: base.appendingPathExtension("json")),
                let info = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
            else { return nil }
            return Received(raw: raw, info: info)
        }
    }
}
