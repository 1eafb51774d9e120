import ArgumentParser
import Foundation
import GatewayCore
import GatewayCrypto
import HTTPTransport
import RedisClient
import Store

/// `scrm-bench drill-ingress`: `concurrency` callers POST distinct signed text webhooks (each its own
/// MsgId) for `seconds`, remembering each answer, while scripts/drill restarts Redis underneath.
/// Then every message is checked in Redis: answered 200 => its dedup record and its stream:inbound
/// entry exist; answered otherwise => both or neither (never half-applied).
struct DrillIngress: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "drill-ingress", abstract: "Webhooks under a Redis restart (see scripts/drill).")

    @Option var gateway: String
    @Option var redis: String
    @Option var config = "config/gateway.yaml"
    @Option var account = "demo"
    @Option var seconds = 12.0
    @Option var concurrency = 16

    func run() async throws {
        let load = try WebhookLoad(config: config, account: account, gateway: gateway)
        let answers = try await load.run(seconds: seconds, concurrency: concurrency).map { ($0.msgId, $0.status, $0.latencyUs, $0.at, $0.from) }

        let pool = RedisPool(try RedisConfiguration(url: redis, connections: 2, connectTimeoutMs: 2000, commandTimeoutMs: 10_000))
        defer { pool.shutdown() }
        let inStream = try await inboundMsgIds(pool)
        var ok = 0, refused = 0, lost = 0, half = 0, refusedButStored = 0
        var latencies = [Int]()
        for chunk in stride(from: 0, to: answers.count, by: 1000) {
            let slice = Array(answers[chunk..<min(chunk + 1000, answers.count)])
            let exists = try await pool.pipeline(slice.map { ["EXISTS", Keys.dedup(account: account, sender: $0.4, key: "m:" + $0.0)] })
            for (a, e) in zip(slice, exists) {
                let deduped = e.int == 1
                let streamed = inStream[a.0] != nil
                if deduped != streamed { half += 1 }
                if a.1 == 200 {
                    ok += 1
                    latencies.append(a.2)
                    if !(deduped && streamed) { lost += 1 }
                } else {
                    refused += 1
                    if deduped && streamed { refusedButStored += 1 }
                }
            }
        }
        latencies.sort()
        func pct(_ p: Double) -> Double { percentileMs(latencies, p) }
        let other = Dictionary(grouping: answers.filter { $0.1 != 200 }, by: { $0.1 }).mapValues(\.count).sorted { $0.key < $1.key }
            .map { "\($0.key == 0 ? "none" : String($0.key))x\($0.value)" }.joined(separator: ",")
        print(
            String(
                format: "RESULT sent=%d ok=%d refused=%d lost=%d half_applied=%d refused_but_stored=%d p50_ms=%.2f p99_ms=%.2f",
                answers.count, ok, refused, lost, half, refusedButStored, pct(0.5), pct(0.99)) + " refusals=" + (other.isEmpty ? "-" : other))
    }
}

/// Signed text webhooks (each its own MsgId) from `concurrency` callers in a closed loop, each answer
/// remembered: what a platform sends, for the drills.
struct WebhookLoad {
    struct Answer {
        let msgId: String
        /// The sender's openid (the dedup key's slot).
        let from: String
        /// 0 = no answer.
        let status: Int
        let latencyUs: Int
        /// Seconds since the load started.
        let at: Double
        /// For an answer other than 200: the callback (to send again, as the platform retries) and the
        /// answer's body (which must not show internals).
        var xml: String? = nil
        var body = ""
    }

    let builder: CallbackBuilder
    let gateway: String
    let run = SecureRandom.alphanumeric(6)

    init(config: String, account: String, gateway: String) throws {
        let cfg = try ConfigLoader().load(path: config)
        guard let acct = cfg.account(account) else { throw ValidationError("no account \(account)") }
        builder = CallbackBuilder(account: acct)
        self.gateway = gateway
    }

    /// Sends a callback again with a fresh timestamp and nonce, as the platform retries one it got no
    /// 200 for; the HTTP status (0 = no answer).
    func retry(_ xml: String, transport: HTTPTransport, attempt: Int) async -> Int {
        let now = Int64(Date().timeIntervalSince1970)
        guard let r = try? builder.post(xml: xml, timestamp: now, nonce: "\(run)r\(attempt)\(SecureRandom.alphanumeric(8))", encrypt: false) else { return 0 }
        let answer = try? await transport.send(
            HTTPRequest(method: "POST", url: gateway + r.pathAndQuery, headers: [("Content-Type", "text/xml")], body: Array(r.body.utf8), timeoutMs: 5000))
        return answer?.status ?? 0
    }

    func run(seconds: Double, concurrency: Int) async throws -> [Answer] {
        let transport = HTTPTransport()
        defer { transport.shutdown() }
        let start = ContinuousClock.now
        let deadline = start + .seconds(seconds)
        let (run, builder, gateway) = (run, builder, gateway)
        return try await withThrowingTaskGroup(of: [Answer].self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    var out = [Answer]()
                    var i = 0
                    while ContinuousClock.now < deadline {
                        i += 1
                        let msgId = "9\(abs(run.hashValue) % 100_000)\(worker)0\(i)"
                        let now = Int64(Date().timeIntervalSince1970)
                        let from = "oDRILL\(worker)x\(i % 50)"
                        let xml = SampleCallbacks.text(to: "gh_drill", from: from, content: "drill \(i)", msgId: msgId, createTime: now)
                        let r = try builder.post(xml: xml, timestamp: now, nonce: "\(run)\(worker)n\(i)", encrypt: false)
                        let t0 = ContinuousClock.now
                        var status = 0
                        var body = ""
                        do {
                            let answer = try await transport.send(
                                HTTPRequest(method: "POST", url: gateway + r.pathAndQuery, headers: [("Content-Type", "text/xml")], body: Array(r.body.utf8), timeoutMs: 5000))
                            status = answer.status
                            if status != 200 { body = String(answer.text.prefix(300)) }
                        } catch {}
                        let d = ContinuousClock.now - t0
                        let since = ContinuousClock.now - start
                        out.append(Answer(
                            msgId: msgId, from: from, status: status, latencyUs: Int(d.components.seconds * 1_000_000 + d.components.attoseconds / 1_000_000_000_000),
                            at: Double(since.components.seconds) + Double(since.components.attoseconds) / 1e18, xml: status == 200 ? nil : xml, body: body))
                        if status != 200 { try await Task.sleep(for: .milliseconds(20)) }  // as a platform would back off
                    }
                    return out
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
    }
}

/// Milliseconds at fraction `p` of sorted microsecond latencies.
func percentileMs(_ sortedUs: [Int], _ p: Double) -> Double {
    sortedUs.isEmpty ? 0 : Double(sortedUs[min(sortedUs.count - 1, Int(Double(sortedUs.count) * p))]) / 1000
}

/// MsgId -> its entries on stream:inbound.
func inboundMsgIds(_ pool: RedisPool) async throws -> [String: Int] {
    var out = [String: Int]()
    for stream in pool.streams.all(Keys.inboundStream) {
        var cursor = "-"
        while true {
            let page = try await pool.send(["XRANGE", stream, cursor, "+", "COUNT", "5000"]).array ?? []
            for e in page {
                guard let parts = e.array, parts.count == 2, let id = parts[0].string else { continue }
                cursor = "(" + id
                if let payload = parts[1].dictionary["payload"], let r = payload.range(of: #""MsgId":""#) {
                    out[String(payload[r.upperBound...].prefix { $0 != "\"" }), default: 0] += 1
                }
            }
            if page.count < 5000 { break }
        }
    }
    return out
}

/// GET `url`, its body read as a JSON object (empty when it is not one).
func getJSON(_ http: HTTPTransport, _ url: String) async throws -> [String: Any] {
    let r = try await http.send(HTTPRequest(method: "GET", url: url, headers: [], body: [], timeoutMs: 30_000))
    return (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any] ?? [:]
}

func seconds(since t: ContinuousClock.Instant) -> Double {
    let d = ContinuousClock.now - t
    return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

/// State per message, counted: "sent", "failed:outcome_unknown" (failures with their reason), "missing"...
func messageStates(_ pool: RedisPool, _ ids: [String]) async throws -> [String: Int] {
    var out = [String: Int]()
    for chunk in stride(from: 0, to: ids.count, by: 1000) {
        let slice = ids[chunk..<min(chunk + 1000, ids.count)]
        for r in try await pool.pipeline(slice.map { ["HMGET", Keys.message($0), "state", "reason"] }) {
            let v = r.array ?? []
            let state = v.first?.string ?? "missing"
            out[state == "failed" ? "failed:" + (v.count > 1 ? v[1].string ?? "?" : "?") : state, default: 0] += 1
        }
    }
    return out
}

/// How many of `messageStates`' messages are done (no further provider call).
func terminalCount(_ states: [String: Int]) -> Int {
    states.filter { OutboundMessage.State(rawValue: String($0.key.prefix { $0 != ":" }))?.isTerminal == true }.values.reduce(0, +)
}
