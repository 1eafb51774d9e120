import ArgumentParser
import Foundation
import GatewayCore
import HTTPTransport
import RedisClient
import Store

/// The campaign benchmark against a running gateway: seeds customers with tags (one Lua call per
/// 1,000, through the customer import), times audience previews, then starts a campaign to the whole
/// audience and follows it: planning time, delivery rate, and the fake provider's count of deliveries
/// and distinct recipients.
struct CampaignBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "campaign", abstract: "Seed, preview, plan and deliver a campaign; prints RESULT.")

    @Option(help: "A single Redis (redis://...), or with --cluster, comma-separated seed nodes.") var redis: String
    @Flag var cluster = false
    @Option var gateway: String
    @Option var token: String
    @Option var fakes: String
    @Option var customers = 1_000_000
    @Option(help: "Give up following the campaign after this long.") var maxSeconds = 900.0
    @Option(help: "Once planning is done, follow delivery this long, then cancel the rest (0 = to the end).") var followSeconds = 0.0
    @Option(help: "The gateway's pid, for its CPU per message (from /proc).") var gatewayPid: Int32 = 0
    @Option(help: "Redis's pid, for its CPU per message.") var redisPid: Int32 = 0
    @Option(help: "The fake provider's pid, for its CPU per message.") var fakePid: Int32 = 0

    static let previewExpression = "vip & (expo-2026 | webinar) & !churned"

    func run() async throws {
        let pool = try benchPool(redis, cluster: cluster, connections: 4, commandTimeoutMs: 120_000)
        defer { pool.shutdown() }
        let http = HTTPTransport()
        defer { http.shutdown() }

        let seedStart = ContinuousClock.now
        try await seed(pool)
        let seedSeconds = seconds(since: seedStart)
        print(String(format: "seeded %d customers in %.1f s", customers, seedSeconds))

        var previews = [Double]()
        var previewCount = 0
        for _ in 0..<3 {
            let t0 = ContinuousClock.now
            let r = try await call(http, "POST", "/api/v1/audiences/preview", #"{"expression":"\#(Self.previewExpression)","sample":10}"#)
            previews.append(seconds(since: t0) * 1000)
            previewCount = r["count"] as? Int ?? -1
        }
        let preview = previews.sorted()[1]
        print(String(format: "preview \"%@\": %d customers, %.0f ms (median of 3)", Self.previewExpression, previewCount, preview))

        let definition = #"{"name":"bench","audience":"consent:sms","channels":[{"channel":"sms","text":"Hi {{profile.nickname}}, the Expo opens at 9."}]}"#
        // scripts/bench's BENCH_COMMANDSTATS counts Redis commands from here: the campaign, not the seeding.
        _ = try await pool.onEachMaster([["CONFIG", "RESETSTAT"]])
        // Redis memory beyond the customers: measured from here (the seeded customers and their indexes).
        let baseMemory = try await Self.usedMemory(pool)
        var memoryAtPlanEnd = 0, peakMemory = 0
        let created = try await call(http, "POST", "/api/v1/campaigns", definition)
        guard let id = created["id"] as? String else { throw ValidationError("campaign not created: \(created)") }
        let start = ContinuousClock.now
        let started = try await call(http, "POST", "/api/v1/campaigns/\(id)/start", "{}")
        let snapshotMs = seconds(since: start) * 1000
        let audience = started["audienceSize"] as? Int ?? 0
        print(String(format: "started: audience snapshot of %d in %.0f ms", audience, snapshotMs))

        var planSeconds: Double?
        var firstSent: (t: Double, n: Int)?
        var sentAtPlanEnd: (t: Double, n: Int)?
        // CPU ticks of gateway, Redis and fake at the start of the steady phase (planning done).
        var steadyStart: [Int]?
        var steadyEnd: (cpu: [Int], sent: Int)?
        let pids = [gatewayPid, redisPid, fakePid]
        var last: (t: Double, n: Int) = (0, 0)
        var state = ""
        var reported = -10.0
        while seconds(since: start) < maxSeconds {
            try await Task.sleep(for: .milliseconds(200))
            let c = try await call(http, "GET", "/api/v1/campaigns/\(id)", nil)
            let p = c["progress"] as? [String: Any] ?? [:]
            let t = seconds(since: start)
            let planned = p["planned"] as? Int ?? 0
            let sent = p["sent"] as? Int ?? 0
            state = c["state"] as? String ?? ""
            let memory = try await Self.usedMemory(pool) - baseMemory
            peakMemory = max(peakMemory, memory)
            if planSeconds == nil, planned >= audience {
                planSeconds = t
                sentAtPlanEnd = (t, sent)
                steadyStart = pids.map(ProcessCPU.ticks)
                memoryAtPlanEnd = memory
                print(String(format: "  planned in %.1f s: Redis +%.0f MB for the campaign (%d sent so far)", t, Double(memory) / 1_048_576, sent))
            }
            // The steady phase ends while the queue still has work (the tail drains more slowly).
            if steadyStart != nil, p["open"] as? Int ?? 0 > 2_000 { steadyEnd = (pids.map(ProcessCPU.ticks), sent) }
            if firstSent == nil, sent > 0 { firstSent = (t, sent) }
            last = (t, sent)
            if t - reported >= 5 {
                reported = t
                print(String(format: "  %5.1f s: planned %d, sent %d, open %d", t, planned, sent, p["open"] as? Int ?? 0))
            }
            if ["completed", "cancelled", "expired"].contains(state) { break }
            if followSeconds > 0, let planned = planSeconds, t - planned >= followSeconds {
                let cancelled = try await call(http, "POST", "/api/v1/campaigns/\(id)/cancel", "{}")
                state = "cancelled-after-\(Int(followSeconds))s"
                print("  followed delivery for \(Int(followSeconds)) s after planning; cancelled the rest (\(cancelled["state"] ?? "?"))")
                break
            }
        }
        let rate = firstSent.map { f in last.t > f.t ? Double(last.n - f.n) / (last.t - f.t) : 0 } ?? 0
        // Once planning is done the senders have the machine to themselves: the steady rate.
        let steady = sentAtPlanEnd.map { p in last.t > p.t ? Double(last.n - p.n) / (last.t - p.t) : 0 } ?? 0
        var perMessage = [0.0, 0.0, 0.0]
        if let s0 = steadyStart, let end = steadyEnd, let p = sentAtPlanEnd {
            perMessage = (0..<3).map { ProcessCPU.microsPerUnit(from: s0[$0], to: end.cpu[$0], units: end.sent - p.n) }
        }
        let summary = try await fakeSummary(http)
        let deliveries = summary["deliveries"] ?? 0
        let recipients = summary["recipients"] ?? 0
        print(
            String(
                format: "RESULT customers=%d preview_ms=%.0f preview_count=%d snapshot_ms=%.0f plan_s=%.1f sent=%d rate=%.0f steady_rate=%.0f state=%@ deliveries=%d recipients=%d seed_s=%.1f gw_us=%.0f redis_us=%.0f fake_us=%.0f mem_plan_mb=%.0f mem_peak_mb=%.0f",
                customers, preview, previewCount, snapshotMs, planSeconds ?? -1, last.n, rate, steady, state, deliveries, recipients, seedSeconds,
                perMessage[0], perMessage[1], perMessage[2], Double(memoryAtPlanEnd) / 1_048_576, Double(peakMemory) / 1_048_576))
    }

    /// Redis's `used_memory` (bytes), summed over a cluster's masters.
    static func usedMemory(_ pool: RedisPool) async throws -> Int {
        try await pool.onEachMaster([["INFO", "memory"]]).reduce(0) { total, node in
            let info = node.replies.first?.string ?? ""
            let line = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("used_memory:") }
            return total + (line.flatMap { Int($0.dropFirst("used_memory:".count)) } ?? 0)
        }
    }

    /// Customer i: a phone and a WeChat follower of demo, a nickname, and tags spread so the preview
    /// expression selects about a fifth: vip 30%, expo-2026 20%, webinar 2 in 7, churned 10%.
    func seed(_ pool: RedisPool) async throws { try await Self.seedCustomers(pool, count: customers) }

    static func seedCustomers(_ pool: RedisPool, count customers: Int) async throws {
        let store = CustomerStore(redis: pool, config: GatewayConfig())
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let batch = 1000
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    var start = worker * batch
                    while start < customers {
                        let rows = (start..<min(start + batch, customers)).map { i in
                            var tags = [String]()
                            if i % 10 < 3 { tags.append("vip") }
                            if i % 5 == 0 { tags.append("expo-2026") }
                            if i % 7 < 2 { tags.append("webinar") }
                            if i % 10 == 9 { tags.append("churned") }
                            return CustomerStore.ImportRow(
                                identities: [
                                    Identity(kind: .phone, value: String(format: "+86139%08d", i)),
                                    Identity(kind: .openid, account: "demo", value: String(format: "oBENCH%09d", i)),
                                ], tags: tags, profile: ["nickname": "Fan \(i)"])
                        }
                        _ = try await store.importBatch(rows, nowMs: now)
                        start += 4 * batch
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    func call(_ http: HTTPTransport, _ method: String, _ path: String, _ body: String?) async throws -> [String: Any] {
        try await APIClient(http: http, gateway: gateway, token: token).call(method, path, body)
    }

    func fakeSummary(_ http: HTTPTransport) async throws -> [String: Int] { try await Self.twilioSummary(http, fakes: fakes) }

    /// The fake Twilio's deliveries and distinct recipients.
    static func twilioSummary(_ http: HTTPTransport, fakes: String) async throws -> [String: Int] {
        let r = try await http.send(HTTPRequest(method: "GET", url: fakes + "/_fakes/summary", headers: [], body: [], timeoutMs: 60_000))
        let object = (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: [String: Int]] ?? [:]
        return object["twilio"] ?? [:]
    }

}
