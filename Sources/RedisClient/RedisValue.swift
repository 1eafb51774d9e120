/// A RESP2 reply.
public enum RedisValue: Sendable, Equatable {
    case bulk([UInt8])
    case status(String)
    case integer(Int)
    case array([RedisValue])
    case null
    case error(String)

    /// The value as text: bulk strings, status replies and integers.
    public var string: String? {
        switch self {
        case .bulk(let b): String(decoding: b, as: UTF8.self)
        case .status(let s): s
        case .integer(let i): String(i)
        default: nil
        }
    }

    public var int: Int? {
        switch self {
        case .integer(let i): i
        case .bulk, .status: string.flatMap { Int($0) }
        default: nil
        }
    }

    public var array: [RedisValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var isNull: Bool { self == .null }

    /// Bulk strings of an array reply (nil elements are skipped).
    public var strings: [String] { array?.compactMap(\.string) ?? [] }

    /// A flat `[field, value, ...]` array reply (HGETALL) as a dictionary.
    public var dictionary: [String: String] {
        let items = strings
        var out = [String: String](minimumCapacity: items.count / 2)
        var i = 0
        while i + 1 < items.count {
            out[items[i]] = items[i + 1]
            i += 2
        }
        return out
    }
}
