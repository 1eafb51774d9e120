import ArgumentParser
import Foundation
import GatewayCore
import GatewayCrypto
import HTTPTransport
import RedisClient

/// `scrm-bench drill-two-instances`: two gateways on one Redis, under load.
/// - Retry dedup: each webhook is sent to both at once, with different nonces (a platform retry that
///   lands on the other instance): both answered 200, stored once.
/// - Replay guard: the identical request to both at once: one 200, one 403, stored once.
/// - Ledgers: each message POSTed to both at once with the same idempotency key: one message, the
///   same id in both answers, delivered once.
/// - Rate limit and tokens: both gateways send; the fake WeChat's delivery times give the combined
///   rate against the spec's limit; halfway through every access token is expired, and the fake
///   counts the token fetches the two processes made.
struct DrillTwoInstances: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "drill-two-instances", abstract: "Two gateways behind one Redis (see scripts/drill).")

    @Option var gateway: [String]
    /// The Redis the gateways share; with `--cluster`, its seed nodes (comma-separated).
    @Option var redis: String
    @Flag var cluster = false
    @Option var token: String
    @Option var fakes: String
    @Option var config = "config/gateway.yaml"
    @Option var account = "demo"
    @Option var webhooks = 2000
    @Option var messages = 2000
    @Option var concurrency = 8
    @Option var maxSeconds = 300.0

    func run() async throws {
        guard gateway.count == 2 else { throw ValidationError("give --gateway twice") }
        let (g1, g2) = (gateway[0], gateway[1])
        let http = HTTPTransport()
        defer { http.shutdown() }
        let cfg = try ConfigLoader().load(path: config)
        guard let acct = cfg.account(account) else { throw ValidationError("no account \(account)") }
        let builder = CallbackBuilder(account: acct)
        let run = SecureRandom.alphanumeric(6)
        let now = Int64(Date().timeIntervalSince1970)

        // Webhooks: (msgId, [status at g1, status at g2]) for retries and for replays.
        @Sendable func webhook(_ i: Int, _ kind: String) -> String {
            SampleCallbacks.text(to: "gh_two", from: "oTWO\(i % 100)", content: "two \(i)", msgId: "\(kind)\(abs(run.hashValue) % 100_000)0\(i)", createTime: now)
        }
        let retries = try await pairs(webhooks) { i in
            let a = try builder.post(xml: webhook(i, "7"), timestamp: now, nonce: "\(run)a\(i)", encrypt: false)
            let b = try builder.post(xml: webhook(i, "7"), timestamp: now, nonce: "\(run)b\(i)", encrypt: false)
            async let s1 = self.postStatus(http, g1 + a.pathAndQuery, a.body)
            async let s2 = self.postStatus(http, g2 + b.pathAndQuery, b.body)
            return try await [s1, s2]
        }
        // The identical request to both: a retry, answered 200 by both and stored once.
        let identical = try await pairs(webhooks) { i in
            let a = try builder.post(xml: webhook(i, "8"), timestamp: now, nonce: "\(run)r\(i)", encrypt: false)
            async let s1 = self.postStatus(http, g1 + a.pathAndQuery, a.body)
            async let s2 = self.postStatus(http, g2 + a.pathAndQuery, a.body)
            return try await [s1, s2]
        }
        // One query (timestamp, nonce, signature) with two bodies: one is stored, the other is a replay.
        let replays = try await pairs(webhooks) { i in
            let a = try builder.post(xml: webhook(i, "9"), timestamp: now, nonce: "\(run)t\(i)", encrypt: false)
            async let s1 = self.postStatus(http, g1 + a.pathAndQuery, a.body)
            async let s2 = self.postStatus(http, g2 + a.pathAndQuery, webhook(i, "6"))
            return try await [s1, s2]
        }
        let pool = try benchPool(redis, cluster: cluster, connections: 2, commandTimeoutMs: 10_000)
        defer { pool.shutdown() }
        let stored = try await inboundMsgIds(pool)
        let retryStored = (0..<webhooks).map { stored["7\(abs(run.hashValue) % 100_000)0\($0)", default: 0] }
        let identicalStored = (0..<webhooks).map { stored["8\(abs(run.hashValue) % 100_000)0\($0)", default: 0] }
        let replayStored = (0..<webhooks).map {
            stored["9\(abs(run.hashValue) % 100_000)0\($0)", default: 0] + stored["6\(abs(run.hashValue) % 100_000)0\($0)", default: 0]
        }

        // Messages: each POSTed to both gateways at once with one idempotency key.
        let start = ContinuousClock.now
        let answers = try await pairs(messages) { i in
            let body = #"{"channel":"wechat","account":"\#(account)","to":"oTWO\#(run)x\#(i)","template":"two-template","transactional":true,"idempotencyKey":"two-\#(run)-\#(i)","variables":{"thing1":"two \#(i)"}}"#
            async let a = self.postMessage(http, g1, body)
            async let b = self.postMessage(http, g2, body)
            return try await [a, b]
        }
        let ids = Array(Set(answers.compactMap { $0.first ?? nil }))
        let sameId = answers.filter { $0.count == 2 && $0[0] != nil && $0[0] == $0[1] }.count
        var expiredAt: Int?
        var terminal = 0
        while seconds(since: start) < maxSeconds {
            let delivered = try await summary(http)["deliveries"] ?? 0
            if expiredAt == nil, delivered >= messages / 2 {
                _ = try await http.send(HTTPRequest(method: "POST", url: fakes + "/_fakes/wechat/expire-tokens", headers: [], body: [], timeoutMs: 5000))
                expiredAt = delivered
            }
            terminal = terminalCount(try await messageStates(pool, ids))
            if terminal == ids.count { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        let s = try await summary(http)
        let fakeCalls = try await calls(http)
        let times = try await timeline(http).sorted()
        var maxWindow = 0
        var lo = 0
        for hi in times.indices {
            while times[hi] - times[lo] >= 1000 { lo += 1 }
            maxWindow = max(maxWindow, hi - lo + 1)
        }
        // The steady rate: past the first 2 s (the burst), to the last delivery.
        let steadyFrom = (times.first ?? 0) + 2000
        let steady = times.filter { $0 >= steadyFrom }
        let steadyRate = steady.count > 1 ? Double(steady.count - 1) / (Double(steady.last! - steady.first!) / 1000) : 0
        let sentBy = try await [sentCount(http, g1), sentCount(http, g2)]

        let fields = [
            "retry_pairs=\(webhooks)", "retry_both_200=\(retries.filter { $0 == [200, 200] }.count)", "retry_stored_once=\(retryStored.filter { $0 == 1 }.count)",
            "identical_pairs=\(webhooks)", "identical_both_200=\(identical.filter { $0 == [200, 200] }.count)",
            "identical_stored_once=\(identicalStored.filter { $0 == 1 }.count)",
            "replay_pairs=\(webhooks)", "replay_one_200_one_403=\(replays.filter { $0.sorted() == [200, 403] }.count)",
            "replay_stored_once=\(replayStored.filter { $0 == 1 }.count)",
            "message_pairs=\(messages)", "messages_created=\(ids.count)", "same_id_both=\(sameId)", "terminal=\(terminal)",
            "deliveries=\(s["deliveries"] ?? 0)", "recipients=\(s["recipients"] ?? 0)", "sent_g1=\(sentBy[0])", "sent_g2=\(sentBy[1])",
            String(format: "steady_rate=%.1f", steadyRate), "max_1s=\(maxWindow)",
            "token_fetches=\(fakeCalls["wechat.token"] as? Int ?? 0)", "expired_at_delivery=\(expiredAt ?? -1)",
            String(format: "seconds=%.1f", seconds(since: start)),
        ]
        print("RESULT " + fields.joined(separator: " "))
    }

    /// Runs `body` for 0..<n, `concurrency` at a time, in order of i.
    func pairs<T: Sendable>(_ n: Int, _ body: @escaping @Sendable (Int) async throws -> T) async throws -> [T] {
        try await withThrowingTaskGroup(of: (Int, T).self) { group in
            var out = [T?](repeating: nil, count: n)
            var next = 0
            while next < min(concurrency, n) {
                let i = next
                group.addTask { (i, try await body(i)) }
                next += 1
            }
            while let (i, value) = try await group.next() {
                out[i] = value
                if next < n {
                    let j = next
                    group.addTask { (j, try await body(j)) }
                    next += 1
                }
            }
            return out.map { $0! }
        }
    }

    func postStatus(_ http: HTTPTransport, _ url: String, _ body: String) async throws -> Int {
        (try? await http.send(HTTPRequest(method: "POST", url: url, headers: [("Content-Type", "text/xml")], body: Array(body.utf8), timeoutMs: 10_000)))?.status ?? 0
    }

    func postMessage(_ http: HTTPTransport, _ gateway: String, _ body: String) async throws -> String? {
        let r = try await http.send(
            HTTPRequest(method: "POST", url: gateway + "/api/v1/messages", headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")],
                body: Array(body.utf8), timeoutMs: 10_000))
        guard r.status == 202 else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any])?["id"] as? String
    }

    func summary(_ http: HTTPTransport) async throws -> [String: Int] {
        try await getJSON(http, fakes + "/_fakes/summary")["wechat.template"] as? [String: Int] ?? [:]
    }

    func calls(_ http: HTTPTransport) async throws -> [String: Any] { try await getJSON(http, fakes + "/_fakes/calls") }

    func timeline(_ http: HTTPTransport) async throws -> [Int64] {
        (try await getJSON(http, fakes + "/_fakes/timeline?provider=wechat.template")["at"] as? [NSNumber] ?? []).map(\.int64Value)
    }

    /// The gateway's own count of WeChat messages it sent (its /metrics).
    func sentCount(_ http: HTTPTransport, _ gateway: String) async throws -> Int {
        let text = try await http.send(HTTPRequest(method: "GET", url: gateway + "/metrics", headers: [], body: [], timeoutMs: 10_000)).text
        let line = text.split(separator: "\n").first {
            $0.hasPrefix("scrm_outbound_messages_total") && $0.contains(#"channel="wechat""#) && $0.contains(#"result="sent""#)
        }
        return line.flatMap { Int(Double($0.split(separator: " ").last ?? "") ?? -1) } ?? 0
    }

}
