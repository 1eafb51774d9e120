/// A failed Redis call; `command` names the command (never its arguments, which may hold personal data).
public struct RedisError: Error, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable {
        /// Could not connect, or the connection broke: Redis may be down or restarting.
        case connection
        /// Redis answered with an error reply.
        case server
        /// The pool is shut down.
        case shutdown
        /// Redis refused our credentials (WRONGPASS), or wants some (NOAUTH).
        case authentication
    }

    public let kind: Kind
    public let command: String
    public let message: String

    public init(_ kind: Kind, command: String, message: String) {
        self.kind = kind
        self.command = command
        self.message = message
    }

    public var description: String { "redis \(kind.rawValue) error on \(command): \(message)" }

    /// The error for an error reply: `.authentication` for NOAUTH and WRONGPASS, else `.server`.
    public static func reply(command: String, message: String) -> RedisError {
        let auth = message.hasPrefix("NOAUTH") || message.hasPrefix("WRONGPASS")
        return RedisError(auth ? .authentication : .server, command: command, message: message)
    }

    /// Redis answered NOSCRIPT: the script cache does not hold that SHA (e.g. after a restart).
    public var isNoScript: Bool { kind == .server && message.hasPrefix("NOSCRIPT") }
}
