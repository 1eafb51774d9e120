import ArgumentParser
import Foundation
import GatewayCore
import HTTPTransport
import RedisClient
import Store

/// The journeys benchmark against a running gateway: a journey (wait, SMS reminder, wait a week) with
/// `enrolled` customers in it. Most wait a week; `burst` are due at one moment (step executions per
/// second while the gateway drains them) and `due` are due spread over one minute (how late each
/// reminder went: message creation against the step's due time). Also Redis memory per enrolled
/// customer and CPU per step (gateway and Redis, from /proc). Prints RESULT.
struct JourneysBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "journeys", abstract: "Enrol, time and drain journey steps; prints RESULT.")

    @Option var redis: String
    @Option var gateway: String
    @Option var token: String
    @Option var enrolled = 1_000_000
    @Option(help: "Customers due within the same minute.") var due = 100_000
    @Option(help: "Customers due at one moment (throughput).") var burst = 20_000
    @Option var gatewayPid: Int32 = 0
    @Option var redisPid: Int32 = 0
    @Option var maxSeconds = 900.0

    func run() async throws {
        let pool = RedisPool(try RedisConfiguration(url: redis, connections: 8, connectTimeoutMs: 2000, commandTimeoutMs: 120_000))
        defer { pool.shutdown() }
        let http = HTTPTransport()
        defer { http.shutdown() }
        let runs = JourneyRunStore(redis: pool)

        let definition = #"""
            {"name": "bench reminders", "trigger": {"event": "web.bench"},
             "steps": [{"id": "w", "wait": {"for": "PT1M"}},
                       {"id": "remind", "send": {"channels": [{"channel": "sms", "text": "Hi {{profile.nickname}}, the Expo opens at 9."}]}},
                       {"id": "later", "wait": {"for": "P7D"}}]}
            """#
        let created = try await call(http, "POST", "/api/v1/journeys", definition)
        guard let journey = created["id"] as? String else { throw ValidationError("journey not created: \(created)") }
        _ = try await call(http, "POST", "/api/v1/journeys/\(journey)/activate", "{}")

        // Customers who get the reminders (real ones, with a phone and SMS consent).
        let real = burst + due
        let customers = CustomerStore(redis: pool, config: GatewayConfig())
        let now0 = Int64(Date().timeIntervalSince1970 * 1000)
        try await concurrently(Array(stride(from: 0, to: real, by: 1000)), width: 4) { start in
            let rows = (start..<min(start + 1000, real)).map { i in
                CustomerStore.ImportRow(identities: [Identity(kind: .phone, value: "+86139\(String(format: "%08d", i))")], profile: ["nickname": "Fan \(i)"])
            }
            _ = try await customers.importBatch(rows, nowMs: now0)
        }
        let ids = try await pool.send("ZRANGE", Keys.customers, "0", "-1").strings
        guard ids.count >= real else { throw ValidationError("seeded \(ids.count) customers, wanted \(real)") }
        let week = now0 + 7 * 86_400_000
        @Sendable func enrol(_ customer: String, dueAt: Int64) async throws {
            let r = try await runs.enrol(
                journey: journey, customer: customer, version: 1, reentry: .never, anchorMs: nil,
                start: .init(step: 0, stepId: "w", dueAt: dueAt, late: false, skipped: []), now: Int64(Date().timeIntervalSince1970 * 1000))
            guard r == .enrolled else { throw ValidationError("enrolment of \(customer): \(r)") }
        }

        // The ones who wait a week: what an enrolment costs in Redis.
        let memory0 = try await usedMemory(pool)
        let fillers = max(0, enrolled - real)
        let seedStart = ContinuousClock.now
        try await concurrently(Array(stride(from: 0, to: fillers, by: 500)), width: 16) { start in
            for _ in start..<min(start + 500, fillers) { try await enrol(ULID.make(milliseconds: now0), dueAt: week) }
        }
        let memory1 = try await usedMemory(pool)
        let perEnrolled = fillers > 0 ? Double(memory1 - memory0) / Double(fillers) : 0
        print(String(format: "enrolled %d waiting a week in %.1f s: %.0f B of Redis memory each", fillers, seconds(since: seedStart), perEnrolled))

        // Burst: `burst` customers due at one moment.
        let burstIds = Array(ids[0..<burst]), minuteIds = Array(ids[burst..<real])
        try await concurrently(Array(stride(from: 0, to: burst, by: 500)), width: 16) { s in
            for c in burstIds[s..<min(s + 500, burst)] { try await enrol(c, dueAt: week) }
        }
        try await concurrently(Array(stride(from: 0, to: due, by: 500)), width: 16) { s in
            for c in minuteIds[s..<min(s + 500, due)] { try await enrol(c, dueAt: week) }
        }
        let burstAt = Int64(Date().timeIntervalSince1970 * 1000) + 2_000
        try await reschedule(pool, burstIds) { _ in burstAt }
        let cpu0 = cpu()
        let burstEnd = try await waitFor(pool, journey: journey, queued: burst, from: burstAt)
        let cpu1 = cpu()
        let burstSeconds = Double(burstEnd - burstAt) / 1000
        let steps = 2 * burst
        print(String(format: "burst: %d customers due at once, %d steps in %.2f s: %.0f steps/s", burst, steps, burstSeconds, Double(steps) / burstSeconds))

        // The minute: `due` customers spread evenly over sixty seconds.
        let minuteAt = Int64(Date().timeIntervalSince1970 * 1000) + 2_000
        var dueAt = [String: Int64]()
        for (i, c) in minuteIds.enumerated() { dueAt[c] = minuteAt + Int64(i) * 60_000 / Int64(max(1, due)) }
        try await reschedule(pool, minuteIds) { dueAt[$0]! }
        _ = try await waitFor(pool, journey: journey, queued: burst + due, from: minuteAt)
        let cpu2 = cpu()
        var lateness = [Int64]()
        for chunk in stride(from: 0, to: due, by: 1000).map({ Array(minuteIds[$0..<min($0 + 1000, due)]) }) {
            let enrolledAt = try await pool.pipelineChecked(chunk.map { ["HGET", Keys.journeyEnrolment(journey: journey, customer: $0), "enrolledAt"] })
            let messages = zip(chunk, enrolledAt).map { c, e in
                Keys.message(JourneyRunStore.messageId(journey: journey, version: 1, customer: c, stepId: "remind", enrolledAt: Int64(e.string ?? "") ?? 0, layout: .single))
            }
            let createdAt = try await pool.pipelineChecked(messages.map { ["HGET", $0, "createdAt"] })
            for (c, v) in zip(chunk, createdAt) { if let t = v.string.flatMap({ Int64($0) }) { lateness.append(max(0, t - dueAt[c]!)) } }
        }
        lateness.sort()
        func pct(_ p: Double) -> Int64 { lateness.isEmpty ? -1 : lateness[min(lateness.count - 1, Int(Double(lateness.count) * p))] }
        print("minute: \(due) customers due over 60 s; reminders created \(lateness.count); lateness p50 \(pct(0.5)) ms, p99 \(pct(0.99)) ms, max \(pct(1))")
        let stats = try await runs.stats(journey)
        let gatewayUs = ProcessCPU.microsPerUnit(from: cpu0.gateway, to: cpu2.gateway, units: 2 * (burst + due))
        let redisUs = ProcessCPU.microsPerUnit(from: cpu0.redis, to: cpu2.redis, units: 2 * (burst + due))
        let burstGatewayUs = ProcessCPU.microsPerUnit(from: cpu0.gateway, to: cpu1.gateway, units: steps)
        let burstRedisUs = ProcessCPU.microsPerUnit(from: cpu0.redis, to: cpu1.redis, units: steps)
        print(
            String(
                format: "RESULT steps_per_s=%.0f burst_seconds=%.2f lateness_p50_ms=%d lateness_p99_ms=%d reminders=%d bytes_per_enrolled=%.0f run_gw_us=%.1f run_rd_us=%.1f burst_gw_us=%.1f burst_rd_us=%.1f enrolled=%d queued=%d sent=%d",
                Double(steps) / burstSeconds, burstSeconds, pct(0.5), pct(0.99), lateness.count, perEnrolled, gatewayUs, redisUs, burstGatewayUs, burstRedisUs,
                stats["enrolled"] ?? 0, stats["s:remind:queued"] ?? 0, stats["s:remind:sent"] ?? 0))
    }

    /// Moves the customers' timers to the given due times (they were seeded a week ahead).
    func reschedule(_ pool: RedisPool, _ customers: [String], _ at: (String) -> Int64) async throws {
        var byPartition = [Int: [String]]()
        for c in customers { byPartition[Keys.journeyTimerPartition(customer: c), default: []].append(c) }
        let journey = try await pool.send("SMEMBERS", Keys.activeJourneys).strings.first ?? ""
        for (p, members) in byPartition {
            for s in stride(from: 0, to: members.count, by: 1000) {
                let chunk = members[s..<min(s + 1000, members.count)]
                _ = try await pool.send(["ZADD", Keys.journeyTimers(p), "XX"] + chunk.flatMap { [String(at($0)), "\(journey)|\($0)"] })
            }
        }
    }

    /// Waits until the journey has queued `queued` reminders; returns when (ms) the last was queued.
    func waitFor(_ pool: RedisPool, journey: String, queued: Int, from: Int64) async throws -> Int64 {
        let start = ContinuousClock.now
        var lastCount = -1
        var lastAt = from
        while seconds(since: start) < maxSeconds {
            let n = Int(try await pool.send("HGET", Keys.journeyStats(journey), "s:remind:queued").string ?? "0") ?? 0
            let t = Int64(Date().timeIntervalSince1970 * 1000)
            if n != lastCount { lastCount = n; lastAt = t }
            if n >= queued { return lastAt }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ValidationError("only \(lastCount) of \(queued) reminders queued after \(maxSeconds) s")
    }

    func usedMemory(_ pool: RedisPool) async throws -> Int {
        let info = try await pool.send("INFO", "memory").string ?? ""
        for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix("used_memory:") { return Int(line.dropFirst(12)) ?? 0 }
        return 0
    }

    func cpu() -> (gateway: Int, redis: Int) { (ProcessCPU.ticks(gatewayPid), ProcessCPU.ticks(redisPid)) }

    func call(_ http: HTTPTransport, _ method: String, _ path: String, _ body: String?) async throws -> [String: Any] {
        var headers = [("Authorization", "Bearer \(token)")]
        if body != nil { headers.append(("Content-Type", "application/json")) }
        let r = try await http.send(HTTPRequest(method: method, url: gateway + path, headers: headers, body: Array((body ?? "").utf8), timeoutMs: 120_000))
        guard (200..<300).contains(r.status) else { throw ValidationError("\(method) \(path): HTTP \(r.status) \(r.text)") }
        return (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any] ?? [:]
    }
}

/// Runs `body` for each item, `width` at a time.
func concurrently<T: Sendable>(_ items: [T], width: Int, _ body: @escaping @Sendable (T) async throws -> Void) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        var next = 0
        for _ in 0..<min(width, items.count) {
            let item = items[next]
            next += 1
            group.addTask { try await body(item) }
        }
        while try await group.next() != nil {
            if next < items.count {
                let item = items[next]
                next += 1
                group.addTask { try await body(item) }
            }
        }
    }
}
