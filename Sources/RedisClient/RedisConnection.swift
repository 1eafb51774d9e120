import CHiredis

/// One hiredis connection. Owns its `redisContext*`; used only by the `RedisWorker` thread that made it.
final class RedisConnection: @unchecked Sendable {
    private var context: UnsafeMutablePointer<redisContext>?
    let configuration: RedisConfiguration
    /// A cluster replica's connection: `READONLY` after connecting, so it serves reads of its master's slots.
    let readOnly: Bool

    init(_ configuration: RedisConfiguration, readOnly: Bool = false) {
        self.configuration = configuration
        self.readOnly = readOnly
    }

    deinit { close() }

    var isConnected: Bool { context != nil }

    /// Connects, then authenticates (AUTH [user] password) and selects the database when configured.
    /// A refused AUTH throws `.authentication`.
    func connect() throws {
        close()
        let opened = configuration.unixSocket.map { scrm_redis_connect_unix($0, configuration.connectTimeoutMs) }
            ?? scrm_redis_connect(configuration.host, Int32(configuration.port), configuration.connectTimeoutMs)
        guard let c = opened else { throw RedisError(.connection, command: "CONNECT", message: "out of memory") }
        if scrm_redis_err(c) != 0 {
            let message = String(cString: scrm_redis_errstr(c))
            redisFree(c)
            throw RedisError(.connection, command: "CONNECT", message: "\(configuration.endpoint): \(message)")
        }
        _ = scrm_redis_set_timeout(c, configuration.commandTimeoutMs)
        context = c
        if let password = configuration.password {
            let auth = configuration.username.map { ["AUTH", $0, password] } ?? ["AUTH", password]
            try append(auth)
            if case .error(let message) = try readReply(command: "AUTH") {
                close()
                throw RedisError(.authentication, command: "AUTH", message: "\(configuration.endpoint) refused \(configuration.username ?? "the password"): \(message)")
            }
        }
        if configuration.database != 0 {
            try append(["SELECT", String(configuration.database)])
            if case .error(let message) = try readReply(command: "SELECT") {
                close()
                throw RedisError.reply(command: "SELECT", message: message)
            }
        }
        if readOnly {
            try append(["READONLY"])
            if case .error(let message) = try readReply(command: "READONLY") {
                close()
                throw RedisError.reply(command: "READONLY", message: message)
            }
        }
    }

    func close() {
        if let c = context { redisFree(c) }
        context = nil
    }

    /// Appends commands to the output buffer; nothing is sent until `readReply`.
    func append(_ args: [String]) throws {
        guard let c = context else { throw RedisError(.connection, command: args.first ?? "?", message: "not connected") }
        var flat = [UInt8]()
        var lengths = [Int]()
        lengths.reserveCapacity(args.count)
        for a in args {
            let u = a.utf8
            flat.append(contentsOf: u)
            lengths.append(u.count)
        }
        let rc: Int32 = flat.withUnsafeBufferPointer { buf in
            var pointers = [UnsafePointer<CChar>?]()
            pointers.reserveCapacity(args.count)
            var offset = 0
            let base = UnsafeRawPointer(buf.baseAddress ?? UnsafePointer(bitPattern: 1)!)
            for n in lengths {
                pointers.append((base + offset).assumingMemoryBound(to: CChar.self))
                offset += n
            }
            return pointers.withUnsafeMutableBufferPointer { p in
                lengths.withUnsafeBufferPointer { l in scrm_redis_append_argv(c, Int32(args.count), p.baseAddress, l.baseAddress) }
            }
        }
        if rc != REDIS_OK { throw brokenError(command: args.first ?? "?") }
    }

    /// Flushes pending output and reads one reply.
    func readReply(command: String) throws -> RedisValue {
        guard let c = context else { throw RedisError(.connection, command: command, message: "not connected") }
        guard let reply = scrm_redis_get_reply(c) else { throw brokenError(command: command) }
        defer { freeReplyObject(reply) }
        return Self.convert(reply)
    }

    private func brokenError(command: String) -> RedisError {
        let message = context.map { String(cString: scrm_redis_errstr($0)) } ?? "not connected"
        close()
        return RedisError(.connection, command: command, message: message.isEmpty ? "connection lost" : message)
    }

    private static func convert(_ r: UnsafePointer<redisReply>) -> RedisValue {
        switch Int(scrm_reply_type(r)) {
        case Int(SCRM_REPLY_STRING):
            let n = scrm_reply_len(r)
            return .bulk(n == 0 ? [] : Array(UnsafeRawBufferPointer(start: scrm_reply_str(r), count: n)))
        case Int(SCRM_REPLY_STATUS): return .status(text(r))
        case Int(SCRM_REPLY_ERROR): return .error(text(r))
        case Int(SCRM_REPLY_INTEGER): return .integer(Int(scrm_reply_integer(r)))
        case Int(SCRM_REPLY_ARRAY):
            return .array((0..<scrm_reply_elements(r)).map { convert(scrm_reply_element(r, $0)) })
        default: return .null
        }
    }

    private static func text(_ r: UnsafePointer<redisReply>) -> String {
        let n = scrm_reply_len(r)
        return String(decoding: UnsafeRawBufferPointer(start: scrm_reply_str(r), count: n), as: UTF8.self)
    }
}
