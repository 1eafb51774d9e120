import GatewayCore
import RedisClient

/// `stream:audit`: one entry per mutating admin call, export or erasure, trimmed by age
/// (`audit.retentionDays`) as entries are added.
public struct AuditLog: Sendable {
    let redis: RedisPool
    let retentionMs: Int64

    public init(redis: RedisPool, retentionDays: Int) {
        self.redis = redis
        self.retentionMs = Int64(retentionDays) * 86_400_000
    }

    public struct Entry: Sendable, Equatable, Encodable {
        /// The stream entry id, which is also the cursor to read on from.
        public var id: String
        public let actor: String
        public let role: String
        public let method: String
        public let route: String
        public let targets: [String]
        public let status: Int
        /// `ok`, `denied` (the role may not) or `failed` (refused or an error).
        public let outcome: String
        public let at: Int64

        public init(actor: String, role: String, method: String, route: String, targets: [String], status: Int, outcome: String, at: Int64) {
            self.id = ""
            self.actor = actor
            self.role = role
            self.method = method
            self.route = route
            self.targets = targets
            self.status = status
            self.outcome = outcome
            self.at = at
        }
    }

    public func append(_ e: Entry) async throws {
        _ = try await redis.send(
            "XADD", Keys.auditStream, "MINID", "~", String(max(0, e.at - retentionMs)), "*",
            "actor", e.actor, "role", e.role, "method", e.method, "route", e.route, "targets", e.targets.joined(separator: "\u{1F}"),
            "status", String(e.status), "outcome", e.outcome, "at", String(e.at))
    }

    public struct Page: Sendable {
        public let entries: [Entry]
        /// Where the next page starts (`after`), nil at the end.
        public let next: String?
    }

    /// Entries from `sinceMs` (or after the entry id `after`), oldest first (or newest first, down to
    /// `sinceMs`), of one actor if given.
    /// Reads at most `scanLimit` entries per call, so a rare actor over a long log pages on. Entry ids
    /// are Redis's clock and `at` the gateway's, so `since` starts an hour early and filters on `at`.
    public func read(sinceMs: Int64?, after: String?, actor: String?, limit: Int, newestFirst: Bool = false, scanLimit: Int = 5000) async throws -> Page {
        // Oldest first walks up from `since` (or after the cursor); newest first walks down from the
        // end (or below the cursor) and stops at `since`.
        let floor = sinceMs.map { "\(max(0, $0 - 3_600_000))-0" } ?? "-"
        var start = after.map { "(" + $0 } ?? (newestFirst ? "+" : floor)
        var found = [Entry]()
        var scanned = 0
        while found.count < limit, scanned < scanLimit {
            let batch = min(500, scanLimit - scanned)
            let command = newestFirst ? ["XREVRANGE", Keys.auditStream, start, floor] : ["XRANGE", Keys.auditStream, start, "+"]
            let reply = try await redis.send(command + ["COUNT", String(batch)]).array ?? []
            for item in reply {
                guard let pair = item.array, pair.count == 2, let id = pair[0].string else { continue }
                start = "(" + id
                scanned += 1
                guard let entry = Self.entry(id, pair[1].dictionary), actor == nil || entry.actor == actor, entry.at >= sinceMs ?? 0 else { continue }
                found.append(entry)
                if found.count == limit { break }
            }
            if reply.count < batch { return Page(entries: found, next: found.count == limit ? String(start.dropFirst()) : nil) }
        }
        return Page(entries: found, next: String(start.dropFirst()))
    }

    static func entry(_ id: String, _ f: [String: String]) -> Entry? {
        guard let at = f["at"].flatMap(Int64.init), let status = f["status"].flatMap(Int.init) else { return nil }
        var e = Entry(
            actor: f["actor"] ?? "", role: f["role"] ?? "", method: f["method"] ?? "", route: f["route"] ?? "",
            targets: (f["targets"] ?? "").split(separator: "\u{1F}").map(String.init), status: status, outcome: f["outcome"] ?? "", at: at)
        e.id = id
        return e
    }
}
