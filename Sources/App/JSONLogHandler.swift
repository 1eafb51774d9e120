import Foundation
import Logging
import NIOConcurrencyHelpers

/// `SCRM_LOG_FORMAT=json`: one JSON object per line on stderr, `{"ts","level","logger","msg", ...metadata}`,
/// for log shippers. Metadata never holds secrets or bodies (the gateway logs routes, ids and reasons).
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    let write: @Sendable (String) -> Void

    public init(label: String, write: @escaping @Sendable (String) -> Void = JSONLogHandler.standardError) {
        self.label = label
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        write(Self.line(level: event.level, label: label, message: event.message.description, metadata: merged, at: Date()))
    }

    /// The JSON line of one record (keys sorted after ts, level, logger, msg).
    public static func line(level: Logger.Level, label: String, message: String, metadata: Logger.Metadata, at: Date) -> String {
        var out = "{\"ts\":\(quote(timestamp(at))),\"level\":\(quote(level.rawValue)),\"logger\":\(quote(label)),\"msg\":\(quote(message))"
        for key in metadata.keys.sorted() where !["ts", "level", "logger", "msg"].contains(key) {
            out += ",\(quote(key)):\(json(metadata[key]!))"
        }
        return out + "}"
    }

    static func json(_ v: Logger.Metadata.Value) -> String {
        switch v {
        case .string(let s): return quote(s)
        case .stringConvertible(let c):
            if let n = c as? any BinaryInteger { return String(describing: n) }
            if let d = c as? Double, d.isFinite { return String(d) }
            if let b = c as? Bool { return b ? "true" : "false" }
            return quote(c.description)
        case .array(let a): return "[" + a.map(json).joined(separator: ",") + "]"
        case .dictionary(let d): return "{" + d.keys.sorted().map { quote($0) + ":" + json(d[$0]!) }.joined(separator: ",") + "}"
        }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    static func timestamp(_ d: Date) -> String {
        d.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }

    private static let lock = NIOLock()
    public static let standardError: @Sendable (String) -> Void = { line in
        lock.withLock { FileHandle.standardError.write(Data((line + "\n").utf8)) }
    }
}
