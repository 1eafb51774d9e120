import GatewayCore
import RedisClient

/// Where a newest-first page of a sorted set of ids (scored by creation time) ends: the last
/// member's score and id. Members with the same score come in descending id order, so the pair
/// orders every member, and a page read after new members arrive neither repeats nor skips one.
public struct PageCursor: Sendable, Equatable {
    public let score: Int64
    public let id: String

    public init(score: Int64, id: String) {
        self.score = score
        self.id = id
    }

    /// `<score>-<id>`, as the API hands it out (`next`) and takes it back (`before`).
    public var text: String { "\(score)-\(id)" }

    public init?(text: String) {
        let parts = text.split(separator: "-", maxSplits: 1)
        guard parts.count == 2, let score = Int64(parts[0]), MessageId.isValid(String(parts[1])) else { return nil }
        self.init(score: score, id: String(parts[1]))
    }
}

extension RedisPool {
    /// Up to `limit` ids of the sorted set `key`, newest (highest score, then highest id) first,
    /// after `before`; and the cursor of the next page when there are more.
    public func newestFirst(_ key: String, limit: Int, before: PageCursor?) async throws -> (ids: [String], next: PageCursor?) {
        let max = before.map { String($0.score) } ?? "+inf"
        var page = [(id: String, score: Int64)]()
        var offset = 0
        // A page and a little more: members at the cursor's own score that were on the last page are skipped.
        while page.count <= limit {
            let batch = limit + 16
            let r = try await send("ZRANGE", key, max, "-inf", "BYSCORE", "REV", "LIMIT", String(offset), String(batch), "WITHSCORES").strings
            var i = 0
            while i + 1 < r.count {
                let id = r[i], score = Int64(Double(r[i + 1]) ?? 0)
                i += 2
                if let b = before, score == b.score, id >= b.id { continue }
                page.append((id, score))
            }
            if r.count / 2 < batch { break }
            offset += batch
        }
        let more = page.count > limit
        page = Array(page.prefix(limit))
        return (page.map(\.id), more ? page.last.map { PageCursor(score: $0.score, id: $0.id) } : nil)
    }
}
