import ArgumentParser
import Foundation
import GatewayCore
import HTTPTransport
import RedisClient

/// `scrm-bench drill-cluster`: the load of scripts/drill's cluster drills, while the script disrupts the
/// cluster (kills a master, or moves slots). Seeds `recipients` customers, starts a campaign to all of
/// them at `rate` per second, prints `SENDING` once the first messages are out (the script's cue), and
/// sends signed webhooks from `concurrency` callers for `seconds`. Then, as the platform does, it sends
/// every webhook that got no 200 again (up to 5 times), follows the campaign to its end, and checks:
/// every webhook answered 200 is stored once, every refusal was a 503 that shows no internals, and the
/// fake SMS provider got exactly one message per recipient.
struct DrillCluster: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "drill-cluster", abstract: "Webhooks and a campaign while the cluster is disrupted (see scripts/drill).")

    @Option var gateway: String
    @Option(help: "Comma-separated seed nodes of the cluster.") var cluster: String
    @Option var token: String
    @Option var fakes: String
    @Option var config = "config/gateway.yaml"
    @Option var account = "demo"
    @Option var recipients = 10_000
    @Option(help: "The campaign's ratePerSecond.") var rate = 300.0
    @Option(help: "Seconds of webhook load, from the campaign's first message.") var loadSeconds = 25.0
    @Option var concurrency = 8
    @Option(help: "Give up following the campaign after this long.") var maxSeconds = 300.0

    func run() async throws {
        let pool = try benchPool(cluster, cluster: true, connections: 2, commandTimeoutMs: 30_000, waitForReplicas: 1)
        defer { pool.shutdown() }
        let http = HTTPTransport()
        defer { http.shutdown() }
        let api = APIClient(http: http, gateway: gateway, token: token)

        try await CampaignBench.seedCustomers(pool, count: recipients)
        let definition = """
            {"name":"drill","audience":"consent:sms","ratePerSecond":\(rate),\
            "channels":[{"channel":"sms","text":"Hi {{profile.nickname}}, the Expo opens at 9."}]}
            """
        guard let id = try await api.call("POST", "/api/v1/campaigns", definition)["id"] as? String else { throw ValidationError("campaign not created") }
        let audience = try await api.call("POST", "/api/v1/campaigns/\(id)/start", "{}")["audienceSize"] as? Int ?? 0
        say("seeded \(recipients) customers; campaign \(id) started to \(audience) at \(Int(rate))/s")
        while try await progress(api, id).sent == 0 { try await Task.sleep(for: .milliseconds(100)) }
        say("SENDING")

        let load = try WebhookLoad(config: config, account: account, gateway: gateway)
        var answers = try await load.run(seconds: loadSeconds, concurrency: concurrency)
        let statuses = Dictionary(grouping: answers.filter { $0.status != 200 }, by: \.status).mapValues(\.count)
        let leaks = answers.filter { !$0.body.isEmpty && Self.showsInternals($0.body) }
        let refusedAt = answers.filter { $0.status != 200 }.map(\.at)

        // The platform's retries: every webhook without a 200, again, until it gets one.
        var retried = 0
        for attempt in 1...5 {
            let pending = answers.indices.filter { answers[$0].status != 200 }
            if pending.isEmpty { break }
            if attempt > 1 { try await Task.sleep(for: .seconds(1)) }
            for i in pending {
                retried += 1
                let status = await load.retry(answers[i].xml ?? "", transport: http, attempt: attempt)
                if status == 200 { answers[i] = WebhookLoad.Answer(msgId: answers[i].msgId, from: answers[i].from, status: 200, latencyUs: 0, at: answers[i].at) }
            }
        }

        // The campaign to its end (the API may itself answer 503 for a moment during the disruption).
        let start = ContinuousClock.now
        var last = try await progress(api, id)
        while !["completed", "cancelled", "expired"].contains(last.state), seconds(since: start) < maxSeconds {
            try await Task.sleep(for: .milliseconds(500))
            last = (try? await progress(api, id)) ?? last
        }

        _ = try await pool.topology()  // the slot map after the disruption (the pool last saw the old one)
        let inStream = try await inboundMsgIds(pool)
        var stored = 0, lost = 0, twice = 0, neverAccepted = 0
        for chunk in stride(from: 0, to: answers.count, by: 1000) {
            let slice = Array(answers[chunk..<min(chunk + 1000, answers.count)])
            let exists = try await pool.pipeline(slice.map { ["EXISTS", Keys.dedup(account: account, sender: $0.from, key: "m:" + $0.msgId)] })
            for (a, e) in zip(slice, exists) {
                let entries = inStream[a.msgId] ?? 0
                if entries > 1 { twice += 1 }
                if a.status != 200 { neverAccepted += 1 } else if e.int == 1 && entries == 1 { stored += 1 } else { lost += 1 }
            }
        }
        let summary = try await CampaignBench.twilioSummary(http, fakes: fakes)
        let outage = refusedAt.isEmpty ? 0 : (refusedAt.max()! - refusedAt.min()!)
        let refusals = statuses.sorted { $0.key < $1.key }.map { "\($0.key == 0 ? "none" : String($0.key))x\($0.value)" }.joined(separator: ",")
        print(
            "RESULT webhooks=\(answers.count) refused=\(refusedAt.count) refusals=\(refusals.isEmpty ? "-" : refusals) refused_span_s=\(String(format: "%.1f", outage))"
                + " leaks=\(leaks.count) retried=\(retried) never_accepted=\(neverAccepted) stored=\(stored) lost=\(lost) stored_twice=\(twice)"
                + " audience=\(audience) state=\(last.state) sent=\(last.sent) failed=\(last.failed)"
                + " deliveries=\(summary["deliveries"] ?? 0) recipients=\(summary["recipients"] ?? 0)")
        if let leak = leaks.first { print("leak: \(leak.status) \(leak.body)") }
    }

    /// A line written at once (print is buffered when stdout is a file), for the script to act on.
    func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

    /// Whether an answer's body names something only the gateway's insides know.
    static func showsInternals(_ body: String) -> Bool {
        let lower = body.lowercased()
        return ["redis", "cluster", "moved", "127.0.0.1", "err ", "wait", "connection", "slot"].contains { lower.contains($0) }
    }

    func progress(_ api: APIClient, _ id: String) async throws -> (state: String, sent: Int, failed: Int) {
        let c = try await api.call("GET", "/api/v1/campaigns/\(id)", nil)
        let p = c["progress"] as? [String: Any] ?? [:]
        return (c["state"] as? String ?? "", p["sent"] as? Int ?? 0, p["failed"] as? Int ?? 0)
    }
}
