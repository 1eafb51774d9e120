import Foundation
import GatewayCore
import RedisClient

/// A saved audience: a name marketers reuse (in the console's audience editor, campaign and journey
/// forms) for an expression. The expression is stored as written and evaluated when used, so a
/// segment always means "who matches now".
public struct Segment: Codable, Sendable, Equatable {
    public let name: String
    public let expression: String
    public let description: String?
    /// When it was last saved (ms) and by whom (the operator, key or `bootstrap`).
    public let updatedAt: Int64
    public let updatedBy: String

    public init(name: String, expression: String, description: String?, updatedAt: Int64, updatedBy: String) {
        self.name = name
        self.expression = expression
        self.description = description
        self.updatedAt = updatedAt
        self.updatedBy = updatedBy
    }

    /// Lowercase letters, digits, `-`, `_` and `.`, starting with a letter or digit, at most 64.
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.unicodeScalars.count <= 64 else { return false }
        func plain(_ c: Unicode.Scalar) -> Bool { ("a"..."z").contains(c) || ("0"..."9").contains(c) }
        return plain(first) && name.unicodeScalars.allSatisfy { plain($0) || $0 == "-" || $0 == "_" || $0 == "." }
    }
}

/// The saved segments, one Redis hash (`Keys.segments`) of name -> JSON.
public struct SegmentStore: Sendable {
    let redis: RedisPool
    /// The most segments kept (a new one past it is refused).
    public static let cap = 1_000

    public init(redis: RedisPool) { self.redis = redis }

    public enum Saved: Sendable, Equatable { case created, replaced, full }

    public func put(_ segment: Segment) async throws -> Saved {
        let json = String(decoding: try JSONEncoder().encode(segment), as: UTF8.self)
        let r = try await redis.fcall(StoreFunctions.library, "segment_put", keys: [Keys.segments], args: [segment.name, json, String(Self.cap)]).int
        switch r {
        case 1: return .created
        case 0: return .replaced
        default: return .full
        }
    }

    public func get(_ name: String) async throws -> Segment? {
        guard let raw = try await redis.send("HGET", Keys.segments, name).string else { return nil }
        return try? JSONDecoder().decode(Segment.self, from: Data(raw.utf8))
    }

    /// Every segment, by name.
    public func list() async throws -> [Segment] {
        let all = try await redis.send("HVALS", Keys.segments).strings
        return all.compactMap { try? JSONDecoder().decode(Segment.self, from: Data($0.utf8)) }.sorted { $0.name < $1.name }
    }

    /// Whether it existed.
    public func delete(_ name: String) async throws -> Bool { try await redis.send("HDEL", Keys.segments, name).int == 1 }
}
