import ArgumentParser
import Foundation
import GatewayCore
import HTTPTransport
import RedisClient

/// `scripts/bench console`: every console page against a Redis holding `customers` customers (seeded
/// as for the campaign benchmark), signed in as an admin; prints each page's server time p50/p99 from
/// its `Server-Timing` header (API calls and rendering included).
struct ConsoleBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "console", abstract: "Console page times with many customers.")

    @Option var redis: String
    @Option var gateway: String
    @Option var token: String
    @Option var customers = 1_000_000
    @Option(help: "Requests per page (after 3 warm-up ones).") var requests = 50

    func run() async throws {
        let pool = RedisPool(try RedisConfiguration(url: redis, connections: 4, connectTimeoutMs: 2000, commandTimeoutMs: 120_000))
        defer { pool.shutdown() }
        let started = Date()
        try await CampaignBench.seedCustomers(pool, count: customers)
        print(String(format: "seeded %d customers in %.1f s", customers, Date().timeIntervalSince(started)))
        let http = HTTPTransport()
        defer { http.shutdown() }
        let api = APIClient(http: http, gateway: gateway, token: token)
        _ = try await api.call("POST", "/api/v1/operators", #"{"name":"bench","role":"admin","password":"bench-password-0123456789"}"#)
        let campaign = try await api.call(
            "POST", "/api/v1/campaigns",
            #"{"name":"Expo reminder","audience":"vip & expo-2026 & !churned","channels":[{"channel":"sms","text":"Hi {{profile.nickname}}, see you at the expo"}],"variants":[{"name":"A","weight":1},{"name":"B","weight":1,"content":{"sms":{"text":"{{profile.nickname}}: booth A"}}}],"holdoutPercent":5}"#)
        let journey = try await api.call(
            "POST", "/api/v1/journeys",
            #"{"name":"Expo","trigger":{"event":"subscribe","scene":"expo2026"},"steps":[{"id":"hello","send":{"channels":[{"channel":"sms","text":"Welcome"}]}},{"id":"w","wait":{"for":"P1D"}},{"id":"bye","send":{"channels":[{"channel":"sms","text":"Bye"}]}}]}"#)
        let customer = try await api.call("GET", "/api/v1/customers/lookup?phone=%2B8613900000042", nil)
        _ = try await api.call("PUT", "/api/v1/segments/expo-vips", #"{"expression":"vip & expo-2026 & !churned"}"#)
        let cookie = try await signIn(http)
        let pages = [
            "/console", "/console/customers", "/console/customers?q=%2B8613900000042", "/console/customers/\(customer["id"] as? String ?? "")",
            "/console/audiences", "/console/audiences?expr=vip%20%26%20expo-2026%20%26%20!churned",
            "/console/audiences?expr=(vip%20%7C%20webinar)%20%26%20expo-2026", "/console/audiences?segment=expo-vips", "/console/campaigns", "/console/campaigns/new",
            "/console/campaigns/\(campaign["id"] as? String ?? "")", "/console/journeys", "/console/journeys/\(journey["id"] as? String ?? "")",
            "/console/imports", "/console/operations", "/console/operations/audit", "/console/operations/keys", "/console/operations/system",
        ]
        for page in pages {
            var times = [Double]()
            for i in 0..<(requests + 3) {
                let r = try await http.send(HTTPRequest(method: "GET", url: gateway + page, headers: [("Cookie", cookie)], body: [], timeoutMs: 60_000))
                guard r.status == 200 else { throw ValidationError("\(page): HTTP \(r.status) \(r.text.prefix(300))") }
                guard let timing = r.headers.first(where: { $0.0.lowercased() == "server-timing" })?.1,
                    let ms = Double(timing.split(separator: "=").last ?? "")
                else { throw ValidationError("\(page): no Server-Timing") }
                if i >= 3 { times.append(ms) }
            }
            times.sort()
            let p50 = times[times.count / 2]
            let p99 = times[min(times.count - 1, Int((Double(times.count) * 0.99).rounded(.up)) - 1)]
            let name = page.replacingOccurrences(of: #"/01[0-9A-Z]{24}"#, with: "/{id}", options: .regularExpression)
            print(String(format: "RESULT page=%@ p50_ms=%.1f p99_ms=%.1f", name, p50, p99))
        }
        // The audience page shows an estimate and its script then fetches the exact count: that
        // count's own time (the Redis evaluation, `elapsedMs` of the answer), reported beside the pages.
        for expression in ["vip & expo-2026 & !churned", "(vip | webinar) & expo-2026"] {
            var times = [Double]()
            for i in 0..<(min(requests, 20) + 3) {
                let answer = try await api.call("POST", "/api/v1/audiences/preview", JSONValue.object(["expression": .string(expression), "sample": .int(10)]).text)
                if i >= 3, let ms = answer["elapsedMs"] as? Double { times.append(ms) }
            }
            times.sort()
            let p99 = times[min(times.count - 1, Int((Double(times.count) * 0.99).rounded(.up)) - 1)]
            print(String(format: "RESULT page=exact-count:%@ p50_ms=%.1f p99_ms=%.1f", expression.replacingOccurrences(of: " ", with: ""), times[times.count / 2], p99))
        }
    }

    /// The sign-in form, its CSRF cookie, the post: the session cookie.
    func signIn(_ http: HTTPTransport) async throws -> String {
        let form = try await http.send(HTTPRequest(method: "GET", url: gateway + "/console/login", headers: [], body: [], timeoutMs: 10_000))
        guard let set = form.headers.first(where: { $0.0.lowercased() == "set-cookie" })?.1, let pair = set.split(separator: ";").first else {
            throw ValidationError("no sign-in cookie")
        }
        let csrf = pair.split(separator: "=", maxSplits: 1).last ?? ""
        let r = try await http.send(
            HTTPRequest(
                method: "POST", url: gateway + "/console/login", headers: [("Cookie", String(pair)), ("Content-Type", "application/x-www-form-urlencoded")],
                body: Array("csrf=\(csrf)&name=bench&password=bench-password-0123456789".utf8), timeoutMs: 10_000))
        guard let session = r.headers.first(where: { $0.0.lowercased() == "set-cookie" && $0.1.hasPrefix("scrm_session=") })?.1.split(separator: ";").first else {
            throw ValidationError("sign-in failed: HTTP \(r.status)")
        }
        return String(session)
    }
}

/// The admin API with a bearer token.
struct APIClient {
    let http: HTTPTransport
    let gateway: String
    let token: String

    func call(_ method: String, _ path: String, _ body: String?) async throws -> [String: Any] {
        var headers = [("Authorization", "Bearer \(token)")]
        if body != nil { headers.append(("Content-Type", "application/json")) }
        let r = try await http.send(HTTPRequest(method: method, url: gateway + path, headers: headers, body: Array((body ?? "").utf8), timeoutMs: 120_000))
        guard (200..<300).contains(r.status) else { throw ValidationError("\(method) \(path): HTTP \(r.status) \(r.text)") }
        return (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any] ?? [:]
    }
}
