/// Which argument of a command is the key Redis Cluster routes it by. Every key of one command must be
/// in one slot (Redis answers CROSSSLOT otherwise), so the first key is enough.
enum CommandKey {
    /// The routing key, or nil for a command that names no key (PING, INFO, MULTI, FCALL with no keys).
    static func of(_ args: [String]) -> String? {
        guard args.count > 1 else { return nil }
        let name = args[0].utf8.contains(where: { $0 >= 97 && $0 <= 122 }) ? args[0].uppercased() : args[0]
        switch name {
        case "FCALL", "FCALL_RO", "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO":
            guard args.count > 3, let n = Int(args[2]), n > 0 else { return nil }
            return args[3]
        case "XREAD", "XREADGROUP":
            guard let i = args.firstIndex(where: { $0.uppercased() == "STREAMS" }), i + 1 < args.count else { return nil }
            return args[i + 1]
        case "ZUNION", "ZINTER", "ZDIFF", "ZINTERCARD", "SINTERCARD", "LMPOP", "ZMPOP":
            return args.count > 2 ? args[2] : nil
        case "XGROUP", "XINFO", "OBJECT":
            return args.count > 2 ? args[2] : nil
        case "MEMORY":
            return args.count > 2 && args[1].uppercased() == "USAGE" ? args[2] : nil
        case "PING", "ECHO", "INFO", "FUNCTION", "SCRIPT", "CLUSTER", "CONFIG", "DBSIZE", "SCAN", "KEYS", "RANDOMKEY", "TIME", "ACL", "CLIENT",
            "MONITOR", "FLUSHALL", "FLUSHDB", "COMMAND", "MULTI", "EXEC", "DISCARD", "WAIT", "ASKING", "READONLY", "READWRITE", "SELECT", "AUTH",
            "HELLO", "LASTSAVE", "SAVE", "BGSAVE", "BGREWRITEAOF", "SLOWLOG", "LATENCY", "DEBUG", "ROLE", "PUBLISH", "SUBSCRIBE", "SHUTDOWN":
            return nil
        default:
            return args[1]
        }
    }
}
