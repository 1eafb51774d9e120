import Foundation

/// Where and how to reach Redis: TCP or a unix socket, with an ACL user or the legacy password, and
/// a database number.
public struct RedisConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// A unix socket path; when set, host and port are not used.
    public var unixSocket: String?
    /// The ACL user (nil = `default`, i.e. `AUTH <password>`).
    public var username: String?
    public var password: String?
    public var database: Int
    public var connections: Int
    public var connectTimeoutMs: Int
    public var commandTimeoutMs: Int

    public init(
        host: String = "127.0.0.1", port: Int = 6379, unixSocket: String? = nil, username: String? = nil, password: String? = nil, database: Int = 0,
        connections: Int = 4, connectTimeoutMs: Int = 1000, commandTimeoutMs: Int = 2000
    ) {
        self.host = host
        self.port = port
        self.unixSocket = unixSocket
        self.username = username
        self.password = password
        self.database = database
        self.connections = connections
        self.connectTimeoutMs = connectTimeoutMs
        self.commandTimeoutMs = commandTimeoutMs
    }

    /// Parses `redis://[user[:password]@]host[:port][/db]` (`redis://:password@host` for the legacy
    /// password) and `unix:///path/redis.sock[?db=N&user=U&password=P]`. User and password are
    /// percent-decoded. TLS (`rediss://`) is refused: hiredis 0.14 has none (see docs/operations.md).
    public init(url: String, connections: Int = 4, connectTimeoutMs: Int = 1000, commandTimeoutMs: Int = 2000) throws {
        self.init(connections: connections, connectTimeoutMs: connectTimeoutMs, commandTimeoutMs: commandTimeoutMs)
        if url.hasPrefix("unix://") {
            try parseUnix(url)
        } else if url.hasPrefix("redis://") {
            try parseTCP(url)
        } else if url.hasPrefix("rediss://") {
            throw RedisURLError(url: url, reason: "TLS (rediss://) is not supported by hiredis 0.14: tunnel it (stunnel or spiped, docs/operations.md)")
        } else {
            throw RedisURLError(url: url, reason: "must start with redis:// or unix://")
        }
    }

    private mutating func parseTCP(_ url: String) throws {
        var rest = Substring(url.dropFirst("redis://".count))
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let user = try decode(credentials[..<colon], url, "user")
                username = user.isEmpty ? nil : user
                password = try decode(credentials[credentials.index(after: colon)...], url, "password")
            } else {
                // redis://password@host: a bare credential is the legacy password.
                password = try decode(credentials, url, "password")
            }
            if password?.isEmpty == true { throw RedisURLError(url: url, reason: "empty password") }
        }
        if let slash = rest.firstIndex(of: "/") {
            let db = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !db.isEmpty {
                guard let n = Int(db), (0...15_999).contains(n) else { throw RedisURLError(url: url, reason: "the database after / must be a number") }
                database = n
            }
        }
        guard !rest.contains("?") else { throw RedisURLError(url: url, reason: "query options are not supported on redis://") }
        let parts = rest.split(separator: ":", omittingEmptySubsequences: false)
        guard let h = parts.first, !h.isEmpty else { throw RedisURLError(url: url, reason: "missing host") }
        host = String(h)
        if parts.count == 2 {
            guard let p = Int(parts[1]), (1...65535).contains(p) else { throw RedisURLError(url: url, reason: "bad port") }
            port = p
        } else if parts.count > 2 {
            throw RedisURLError(url: url, reason: "bad host:port")
        }
    }

    private mutating func parseUnix(_ url: String) throws {
        guard let components = URLComponents(string: url), components.host?.isEmpty ?? true, components.path.hasPrefix("/"), components.path.count > 1 else {
            throw RedisURLError(url: url, reason: "write unix:///absolute/path/redis.sock")
        }
        unixSocket = components.path
        for item in components.queryItems ?? [] {
            switch item.name {
            case "db":
                guard let n = item.value.flatMap(Int.init), (0...15_999).contains(n) else { throw RedisURLError(url: url, reason: "db must be a number") }
                database = n
            case "user": username = item.value
            case "password": password = item.value
            default: throw RedisURLError(url: url, reason: "unknown option \(item.name) (db, user, password)")
            }
        }
        if username != nil, password == nil { throw RedisURLError(url: url, reason: "a user needs a password") }
    }

    private func decode(_ s: Substring, _ url: String, _ what: String) throws -> String {
        guard let v = String(s).removingPercentEncoding else { throw RedisURLError(url: url, reason: "the \(what) is not valid percent-encoding") }
        return v
    }

    /// Where it connects, for logs and errors (never the password).
    public var endpoint: String { unixSocket ?? "\(host):\(port)" }
}

/// A `redis.url` that cannot be used; the reason never repeats the password.
public struct RedisURLError: Error, CustomStringConvertible {
    public let reason: String
    public init(url: String, reason: String) { self.reason = reason }
    public var description: String { "invalid Redis URL: \(reason)" }
}
