import FakeProviders
import Foundation
import GatewayCore
import HTTPTransport
import RedisClient
import Store
import TestSupport
import XCTest

/// The journeys issue's crash test: the expo journey with three reminders seconds apart for 10,000
/// customers (an audience enrolled at activation), two real gateway processes, each reminder a
/// WeChat template to the loopback fake. One gateway is killed (SIGKILL) while the first reminder
/// goes out and one while the second does; 200 customers register between the first and the second.
/// Counted at the fake: every customer got each reminder exactly once, and nobody who registered got
/// anything after. SCRM_JOURNEY_CRASH_CUSTOMERS changes the size.
final class JourneyCrashTests: XCTestCase {
    static let token = "journey-crash-admin-token-0123"

    func test_twoGatewaysKilledTwice_everyReminderExactlyOnce_noneAfterExit() async throws {
        let binary = try GatewayProcess.binary()
        let n = ProcessInfo.processInfo.environment["SCRM_JOURNEY_CRASH_CUSTOMERS"].flatMap { Int($0) } ?? 10_000
        let leavers = n / 50
        // Seconds between reminders: a wave is delivered well inside one (a reminder still queued when
        // the next one's moment comes is skipped, not sent late), at the ~200 WeChat sends a second two
        // debug-built gateways make here.
        let gap = max(15, n / 120)
        let target = try CrashRedis()
        let redis = target.pool
        let fakes = try await ProviderFakes.start()
        let appId = "wxjourney0000001"
        fakes.wechat.addAccount(appId: appId, secret: "journey-app-secret")
        let work = target.directory.appendingPathComponent("gateway")
        let adapters = try GatewayProcess.adapters(in: work, edits: ["wechat-template.yaml": ("per_second: 100\n  burst: 100", "per_second: 20000\n  burst: 500")])
        let ports = try (0..<2).map { _ in try LocalProcess.freePort() }
        let envs = try ports.enumerated().map { g, port in
            try GatewayProcess.crashConfig(
                in: work, index: g, port: port, redis: target.locator, adminToken: Self.token, adapters: adapters, appId: appId,
                appSecret: "journey-app-secret", fakes: fakes.environment, outbound: "  journeyLeaseSeconds: 2",
                extra: #"contactRules: { quietHours: { start: "00:00", end: "00:00" } }"#)
        }

        let customers = CustomerStore(redis: redis, config: GatewayConfig())
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for start in stride(from: 0, to: n, by: 1000) {
            let rows = (start..<min(start + 1000, n)).map { i in
                CustomerStore.ImportRow(
                    identities: [Identity(kind: .openid, account: "demo", value: String(format: "oJRNY%06d", i))], tags: ["expo-2026"],
                    profile: ["nickname": "Visitor \(i)"])
            }
            _ = try await customers.importBatch(rows, nowMs: now)
        }

        var gateways = try envs.map { try LocalProcess.spawn([binary], environment: $0) }
        defer { gateways.forEach(LocalProcess.terminate) }
        for p in ports { try LocalProcess.waitUntil(port: p, accepting: true, what: "scrm-gateway") }
        let http = HTTPTransport()
        defer { http.shutdown() }
        func api(_ method: String, _ path: String, _ body: String) async throws -> [String: Any] {
            try await GatewayProcess.admin(http, port: ports[0], token: Self.token, method, path, body)
        }
        // Reminders at 1, 2 and 3 gaps after the enrolment has had its time (a second per 500 customers).
        let enrolling = max(5, n / 500)
        let anchor = ISO8601DateFormatter().string(from: Date().addingTimeInterval(Double(enrolling + 4 * gap)))
        func remind(_ id: String, _ template: String, _ wait: Int) -> String {
            #"{"id": "w\#(id)", "wait": {"until": "anchor", "offset": "-PT\#(wait)S"}}, {"id": "\#(id)", "send": {"channels": [{"channel": "wechat", "account": "demo", "template": "\#(template)", "data": {"first": "Hi {{profile.nickname}}"}}]}}"#
        }
        let created = try await api(
            "POST", "/api/v1/journeys",
            #"{"name": "Expo reminders (crash)", "trigger": {"audience": "expo-2026"}, "anchor": "\#(anchor)", "exitOn": [{"event": "web.register"}], "steps": [\#(remind("r3", "T3", 3 * gap)), \#(remind("r2", "T2", 2 * gap)), \#(remind("r1", "T1", gap))]}"#)
        let id = try XCTUnwrap(created["id"] as? String, "\(created)")
        let activated = try await api("POST", "/api/v1/journeys/\(id)/activate", "{}")
        XCTAssertEqual(activated["state"] as? String, "active", "\(activated)")

        func delivered(_ template: String) -> [String] { fakes.ledger.deliveries("wechat.template").filter { $0.body["template_id"] == template }.map(\.to) }
        var killed = [String]()
        func restartGateway() throws {
            let g = Int.random(in: 0..<gateways.count)
            kill(gateways[g], SIGKILL)
            var status: Int32 = 0
            waitpid(gateways[g], &status, 0)
            gateways[g] = try LocalProcess.spawn([binary], environment: envs[g])
            killed.append("gateway \(g + 1)")
        }
        let patience = Double(enrolling + 5 * gap + 60)
        try await GatewayProcess.waitFor("everyone enrolled", seconds: patience) {
            (try? await redis.send("HGET", Keys.journeyStats(id), "enrolled").string).flatMap { Int($0 ?? "") } == n
        }
        // Killed while the first reminder goes out; 200 register once it is out; killed again during the second.
        try await GatewayProcess.waitFor("a third of the first reminders", seconds: patience) { delivered("T3").count >= n / 3 }
        let atFirstKill = delivered("T3").count
        try restartGateway()
        try await GatewayProcess.waitFor("every first reminder", seconds: patience) { Set(delivered("T3")).count >= n }
        for i in 0..<leavers {
            let r = try await api(
                "POST", "/api/v1/events", #"{"events":[{"type":"web.register","identity":{"type":"openid","account":"demo","value":"\#(String(format: "oJRNY%06d", i))"}}]}"#)
            XCTAssertNotNil(r["accepted"] ?? r["results"], "\(r)")
        }
        try await GatewayProcess.waitFor("the registrations taken in", seconds: 30) {
            (try? await redis.send("HGET", Keys.journeyStats(id), "exited").string).flatMap { Int($0 ?? "") } == leavers
        }
        try await GatewayProcess.waitFor("a third of the second reminders", seconds: patience) { delivered("T2").count >= (n - leavers) / 3 }
        let atSecondKill = delivered("T2").count
        try restartGateway()
        try await GatewayProcess.waitFor("every last reminder", seconds: patience) { Set(delivered("T1")).count >= n - leavers }
        try await Task.sleep(for: .seconds(3))  // anything more that would come

        let stats = try await redis.send("HGETALL", Keys.journeyStats(id)).dictionary
        var summary = [String]()
        for template in ["T3", "T2", "T1"] {
            let got = delivered(template)
            let counts = Dictionary(grouping: got, by: { $0 }).mapValues(\.count)
            let expected = template == "T3" ? n : n - leavers
            let leaversReached = (0..<leavers).filter { counts[String(format: "oJRNY%06d", $0)] != nil }.count
            XCTAssertEqual(counts.count, expected, "\(template): every customer still in the journey got it; stats \(stats)")
            XCTAssertEqual(counts.values.filter { $0 > 1 }.count, 0, "\(template): nobody twice")
            if template != "T3" { XCTAssertEqual(leaversReached, 0, "\(template): nobody who registered") }
            summary.append("\(template) deliveries=\(got.count) recipients=\(counts.count) duplicates=\(counts.values.filter { $0 > 1 }.count) missing=\(expected - counts.count) exited_reached=\(template == "T3" ? 0 : leaversReached)")
        }
        print("journey crash test: \(n) customers, 2 gateways, reminders \(gap) s apart; kill -9 (\(killed.joined(separator: ", "))) at \(atFirstKill) first and \(atSecondKill) second reminders delivered; \(leavers) registered after the first; RESULT \(summary.joined(separator: "; "))")
        await fakes.stop()
    }
}
