import GatewayCore
import RedisClient

/// Where sandbox adapters put what they would have sent: one capped Redis stream per channel, read
/// back by `GET /api/v1/sandbox/messages`.
public struct SandboxOutbox: Sendable {
    public struct Record: Sendable, Equatable {
        /// The stream entry id, also the "provider id" a sandbox send returns.
        public let id: String
        public let channel: String
        public let adapter: String
        /// The real adapter whose request this is.
        public let renders: String
        public let messageId: String
        public let to: String
        public let atMs: Int64
        /// The request as `RenderedRequest.transcript` shows it.
        public let request: String
    }

    public let redis: RedisPool
    let maxLen: Int

    public init(redis: RedisPool, maxLen: Int) {
        self.redis = redis
        self.maxLen = maxLen
    }

    /// Records one rendered request (`transcript`: as `RenderedRequest.transcript` shows it) on its
    /// channel's stream; returns its id.
    public func record(channel: String, adapter: String, renders: String, messageId: String, to: String, transcript: String, atMs: Int64)
        async throws -> String
    {
        let id = try await redis.send([
            "XADD", Keys.sandbox(channel: channel), "MAXLEN", "~", String(maxLen), "*",
            "adapter", adapter, "renders", renders, "message_id", messageId, "to", to, "at", String(atMs), "request", transcript,
        ])
        guard let s = id.string else { throw RedisError(.server, command: "XADD", message: "no entry id in the reply") }
        return s
    }

    /// The newest records of `channels`, newest first, merged.
    public func list(channels: [String], limit: Int) async throws -> [Record] {
        let replies = try await redis.pipelineChecked(channels.map { ["XREVRANGE", Keys.sandbox(channel: $0), "+", "-", "COUNT", String(limit)] })
        var records = [Record]()
        for (channel, reply) in zip(channels, replies) {
            for entry in reply.array ?? [] {
                guard let parts = entry.array, parts.count == 2, let id = parts[0].string else { continue }
                let f = parts[1].dictionary
                records.append(Record(
                    id: id, channel: channel, adapter: f["adapter"] ?? "", renders: f["renders"] ?? "", messageId: f["message_id"] ?? "",
                    to: f["to"] ?? "", atMs: Int64(f["at"] ?? "") ?? 0, request: f["request"] ?? ""))
            }
        }
        // Stream ids are "<ms>-<seq>": order by both numerically.
        func key(_ id: String) -> (Int64, Int64) {
            let p = id.split(separator: "-")
            return (Int64(p.first ?? "") ?? 0, Int64(p.last ?? "") ?? 0)
        }
        return Array(records.sorted { key($0.id) > key($1.id) }.prefix(limit))
    }
}
