import ArgumentParser
import Foundation
import GatewayCore
import GatewayCrypto
import HTTPTransport
import RedisClient

/// `scrm-bench drill-outage`: template messages go to the fake WeChat at `rate` a second while signed
/// webhooks keep arriving; the fake is healthy for `healthySeconds`, answers 503 for `errorSeconds`,
/// then takes messages and never answers for `hangSeconds`, then recovers. Afterwards: every accepted
/// message delivered exactly once (the fake's count), what was dead-lettered and why, provider calls
/// per phase (the backing off), and webhook latency per phase.
struct DrillOutage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "drill-outage", abstract: "Messages and webhooks through a provider outage (see scripts/drill).")

    @Option var gateway: String
    @Option var redis: String
    @Option var token: String
    @Option var fakes: String
    @Option var config = "config/gateway.yaml"
    @Option var account = "demo"
    @Option var rate = 50.0
    @Option var healthySeconds = 10.0
    @Option var errorSeconds = 20.0
    @Option var hangSeconds = 60.0
    @Option(help: "After recovery, wait this long at most for every message to be delivered.") var recoverSeconds = 180.0

    enum Phase: Int, CaseIterable {
        case healthy, error, hang, recovered
        var name: String { ["healthy", "5xx", "hang", "recovered"][rawValue] }
    }

    func run() async throws {
        let http = HTTPTransport()
        defer { http.shutdown() }
        let run = SecureRandom.alphanumeric(6)
        let outageSeconds = errorSeconds + hangSeconds
        let produceSeconds = healthySeconds + outageSeconds
        let phaseEnds = [healthySeconds, healthySeconds + errorSeconds, produceSeconds]
        func phase(at t: Double) -> Phase { Phase(rawValue: phaseEnds.firstIndex { t < $0 } ?? 3)! }

        let load = try WebhookLoad(config: config, account: account, gateway: gateway)
        async let webhooks = load.run(seconds: produceSeconds + 10, concurrency: 4)
        async let accepted = produce(http, run: run, duration: produceSeconds)

        // The outage, and the provider calls made in each phase.
        var calls = [Int]()
        let start = ContinuousClock.now
        calls.append(try await providerCalls(http))
        try await Task.sleep(until: start + .seconds(healthySeconds))
        calls.append(try await providerCalls(http))
        try await outage(http, "error")
        try await Task.sleep(until: start + .seconds(healthySeconds + errorSeconds))
        calls.append(try await providerCalls(http))
        try await outage(http, "hang")
        try await Task.sleep(until: start + .seconds(produceSeconds))
        calls.append(try await providerCalls(http))
        try await outage(http, "none")
        let recoveredAt = ContinuousClock.now
        let ids = try await accepted
        print("  \(ids.count) messages accepted; outage over, waiting for the queue")

        let pool = RedisPool(try RedisConfiguration(url: redis, connections: 2, connectTimeoutMs: 2000, commandTimeoutMs: 10_000))
        defer { pool.shutdown() }
        var states = [String: Int]()
        var drainSeconds = -1.0
        while seconds(since: recoveredAt) < recoverSeconds {
            states = try await messageStates(pool, ids)
            if terminalCount(states) == ids.count {
                drainSeconds = seconds(since: recoveredAt)
                break
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        calls.append(try await providerCalls(http))
        let hooks = try await webhooks

        let summary = try await getJSON(http, fakes + "/_fakes/summary")["wechat.template"] as? [String: Any] ?? [:]
        let fakeCalls = try await getJSON(http, fakes + "/_fakes/calls")
        let deadLetters = try await pool.send("XLEN", Keys.deadLetters).int ?? -1
        let sent = (states["sent"] ?? 0) + (states["delivered"] ?? 0)
        let failed = states.filter { $0.key.hasPrefix("failed") }.map { "\($0.key)x\($0.value)" }.sorted().joined(separator: ",")
        var fields = [
            "accepted=\(ids.count)", "sent=\(sent)", "failed=\(failed.isEmpty ? "-" : failed)", "dead_letters=\(deadLetters)",
            "deliveries=\(summary["deliveries"] as? Int ?? 0)", "recipients=\(summary["recipients"] as? Int ?? 0)",
            "duplicates_refused=\(fakeCalls["wechat.template.duplicate"] as? Int ?? 0)",
            String(format: "drain_s=%.1f", drainSeconds),
        ]
        let durations = [healthySeconds, errorSeconds, hangSeconds, max(0.001, drainSeconds < 0 ? recoverSeconds : drainSeconds)]
        for p in Phase.allCases {
            let n = calls[p.rawValue + 1] - calls[p.rawValue]
            let inPhase = hooks.filter { phase(at: $0.at) == p }
            let latencies = inPhase.filter { $0.status == 200 }.map(\.latencyUs).sorted()
            fields += [
                "\(p.name)_calls=\(n)", String(format: "\(p.name)_calls_per_s=%.1f", Double(n) / durations[p.rawValue]),
                "\(p.name)_webhooks=\(inPhase.count)", "\(p.name)_webhooks_refused=\(inPhase.count - latencies.count)",
                String(format: "\(p.name)_p50_ms=%.2f", percentileMs(latencies, 0.5)), String(format: "\(p.name)_p99_ms=%.2f", percentileMs(latencies, 0.99)),
            ]
        }
        print("RESULT " + fields.joined(separator: " "))
    }

    /// Template messages at `rate` a second, each to its own follower; returns the accepted ids.
    func produce(_ http: HTTPTransport, run: String, duration: Double) async throws -> [String] {
        let start = ContinuousClock.now
        var ids = [String]()
        var i = 0
        while seconds(since: start) < duration {
            let body = #"{"channel":"wechat","account":"\#(account)","to":"oOUT\#(run)x\#(i)","template":"drill-template","transactional":true,"variables":{"thing1":"drill \#(i)"}}"#
            let r = try await http.send(
                HTTPRequest(method: "POST", url: gateway + "/api/v1/messages", headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")],
                    body: Array(body.utf8), timeoutMs: 10_000))
            if r.status == 202, let id = (try? JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any])?["id"] as? String { ids.append(id) }
            i += 1
            try await Task.sleep(until: start + .seconds(Double(i) / rate))
        }
        return ids
    }

    /// Template sends plus access-token calls made to the fake so far.
    func providerCalls(_ http: HTTPTransport) async throws -> Int {
        let c = try await getJSON(http, fakes + "/_fakes/calls")
        return (c["wechat.template"] as? Int ?? 0) + (c["wechat.token"] as? Int ?? 0)
    }

    func outage(_ http: HTTPTransport, _ mode: String) async throws {
        let r = try await http.send(HTTPRequest(method: "POST", url: fakes + "/_fakes/outage?mode=\(mode)", headers: [], body: [], timeoutMs: 5000))
        guard r.status == 200 else { throw ValidationError("outage \(mode): HTTP \(r.status)") }
    }

}
