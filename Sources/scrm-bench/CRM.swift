import ArgumentParser
import Foundation
import GatewayCore
import HTTPTransport
import RedisClient
import Store

/// `scrm-bench crm`: seeds customers, puts one qualifying interaction per customer on stream:inbound
/// (a text asking for a demo: the shipped `demo-request` rule qualifies), and follows the fake
/// CRM (`--crm hubspot`, `marketo` or `eloqua`) until every customer is a record there. The gateway does the
/// rest: scoring, the CRM queue, batches and the budget.
struct CRMBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "crm", abstract: "Qualified leads synced to the fake HubSpot, Marketo or Eloqua (see scripts/bench).")

    @Option var redis: String
    @Option var fakes: String
    @Option(help: "The fake CRM the gateway syncs to: hubspot, marketo or eloqua.") var crm = "hubspot"
    @Option var customers = 10_000
    @Option(help: "Give up after this long.") var maxSeconds = 900.0

    func run() async throws {
        let pool = RedisPool(try RedisConfiguration(url: redis, connections: 4, connectTimeoutMs: 1000, commandTimeoutMs: 10_000))
        defer { pool.shutdown() }
        let store = CustomerStore(redis: pool, config: GatewayConfig())
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for start in stride(from: 0, to: customers, by: 1000) {
            let rows = (start..<min(start + 1000, customers)).map { i in
                CustomerStore.ImportRow(
                    identities: [Identity(kind: .email, value: "lead\(i)@example.com"), Identity(kind: .unionid, value: "uBENCH\(i)")],
                    profile: ["nickname": "Lead \(i)"])
            }
            _ = try await store.importBatch(rows, nowMs: now)
        }
        let ids = try await pool.send("ZRANGE", Keys.customers, "0", "-1").strings
        guard ids.count == customers else { throw ValidationError("seeded \(ids.count) customers, wanted \(customers)") }
        let started = Date()
        for chunk in stride(from: 0, to: ids.count, by: 500) {
            let at = String(Int64(Date().timeIntervalSince1970 * 1000))
            _ = try await pool.pipelineChecked(
                ids[chunk..<min(chunk + 500, ids.count)].map { id in
                    ["XADD", pool.streams.inbound(customer: id), "*", "type", "message.text", "customer", id, "payload", #"{"Content":"Could we book a demo?"}"#, "at", at]
                })
        }
        let http = HTTPTransport.shared
        var summary = [String: Any]()
        while Date().timeIntervalSince(started) < maxSeconds {
            let r = try await http.send(HTTPRequest(url: fakes + "/_fakes/" + crm))
            summary = (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any] ?? [:]
            if (summary["records"] as? Int ?? 0) >= customers { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let done = Date().timeIntervalSince(started)
        let first = summary["firstServedAt"] as? Int64 ?? Int64(summary["firstServedAt"] as? Int ?? 0)
        let last = summary["lastServedAt"] as? Int64 ?? Int64(summary["lastServedAt"] as? Int ?? 0)
        let queued = try await pool.send("XLEN", Keys.crmStream).int ?? 0
        print(
            String(
                format: "RESULT customers=%d records=%d calls=%d throttled=%d largest=%d writes=%d span_s=%.2f e2e_s=%.2f first_call_after_s=%.2f crm_stream=%d tokens=%d imports=%d polls=%d",
                customers, summary["records"] as? Int ?? 0, summary["calls"] as? Int ?? 0, summary["throttled"] as? Int ?? 0,
                summary["largestBatch"] as? Int ?? 0, summary["writes"] as? Int ?? 0, Double(last - first) / 1000, done,
                Double(first) / 1000 - started.timeIntervalSince1970, queued, summary["tokensIssued"] as? Int ?? 0, summary["imports"] as? Int ?? 0,
                summary["polls"] as? Int ?? 0))
    }
}
