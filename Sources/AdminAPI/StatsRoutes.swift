import GatewayCore
import HTTPAPI
import Hummingbird
import Ingress
import RedisClient
import Store

/// `GET /api/v1/stats/activity?hours=24`: the dashboard's numbers per hour, summed over every gateway
/// process: callbacks stored by account and type, followers gained and lost, messages sent, delivered
/// and failed by channel, and how many dead letters wait.
struct StatsRoutes {
    let activity: ActivityStats
    let redis: RedisPool
    let clock: @Sendable () -> Int64

    struct Activity: Encodable {
        /// The start of each hour, oldest first; every series has one count per hour.
        let hours: [String]
        let inbound: [Inbound]
        let followers: [Followers]
        let outbound: [Outbound]
        let deadLetters: Int
    }

    struct Inbound: Encodable {
        let account: String
        let type: String
        let counts: [Int]
    }

    struct Followers: Encodable {
        let account: String
        let gained: [Int]
        let lost: [Int]
    }

    struct Outbound: Encodable {
        let channel: String
        let sent: [Int]
        let delivered: [Int]
        let failed: [Int]
    }

    func register<Context: RequestContext>(on group: DeclaredRoutes<Context>) {
        group.get("/stats/activity", .operationsRead) { request, _ in
            try await storage {
                guard let hours = Int(request.uri.queryParameters.get("hours") ?? "24"), (1...168).contains(hours) else {
                    throw APIError.badRequest("hours must be 1...168", code: "invalid_hours")
                }
                return try JSONResponse.encoded(try await activity(hours: hours))
            }
        }
    }

    func activity(hours: Int) async throws -> Activity {
        let series = try await activity.read(hours: hours, nowMs: clock())
        func counts(_ field: String) -> [Int] { series.map { $0.counts[field] ?? 0 } }
        let fields = Set(series.flatMap(\.counts.keys)).sorted()
        func parts(_ kind: String) -> [[String]] {
            fields.map { $0.split(separator: "|", omittingEmptySubsequences: false).map(String.init) }.filter { $0.count == 3 && $0[0] == kind }
        }
        let inbound = parts("in").map { Inbound(account: $0[1], type: $0[2], counts: counts($0.joined(separator: "|"))) }
        let followerAccounts = Set(parts("follow").map { $0[1] }).sorted()
        let channels = Set(parts("out").map { $0[1] }).sorted()
        return Activity(
            hours: series.map { JSONResponse.isoTime($0.startMs) }, inbound: inbound,
            followers: followerAccounts.map { Followers(account: $0, gained: counts("follow|\($0)|gained"), lost: counts("follow|\($0)|lost")) },
            outbound: channels.map { Outbound(channel: $0, sent: counts("out|\($0)|sent"), delivered: counts("out|\($0)|delivered"), failed: counts("out|\($0)|failed")) },
            deadLetters: try await MessageStore(redis: redis).deadLetterCount())
    }
}
