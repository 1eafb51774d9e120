import ArgumentParser
import Foundation

/// `scrmctl crm status|customer|replay` and `scrmctl scoring reload`.
struct CRM: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crm", abstract: "CRM sync: adapter status, a customer's sync, replay dead letters.",
        subcommands: [Status.self, Customer.self, Replay.self])

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Per CRM adapter: queue, budget used, synced, dead-lettered, last error.")
        @OptionGroup var gateway: GatewayOptions

        func run() async throws {
            let r = try await gateway.admin("GET", "/api/v1/crm")
            let adapters = r["adapters"] as? [[String: Any]] ?? []
            if adapters.isEmpty { print("no CRM adapter configured (crm.adapters in the config)") }
            for a in adapters {
                let q = a["queue"] as? [String: Any] ?? [:]
                let b = a["budget"] as? [String: Any] ?? [:]
                print("\(a["adapter"] ?? "?") (\(a["style"] ?? "?"))")
                print("  queue     waiting \(q["waiting"] ?? 0), in flight \(q["inFlight"] ?? 0), retrying \(q["retrying"] ?? 0)")
                print("  budget    \(b["used"] ?? 0) of \(b["requests"] ?? 0) calls per \(b["windowMs"] ?? 0) ms used")
                if let c = b["concurrent"] { print("  at once   at most \(c) calls") }
                if let d = b["daily"] as? [String: Any] {
                    print("  daily     \(d["used"] ?? 0) of \(d["limit"] ?? 0) calls used, resets \(d["resetsAt"] ?? "?")")
                }
                if let p = a["pausedUntil"] as? String { print("  PAUSED    until \(p) (throttled, or the daily quota is spent)") }
                print("  synced    \(a["synced"] ?? 0)   dead-lettered \(a["deadLettered"] ?? 0)   calls \(a["calls"] ?? 0)   throttled \(a["throttled"] ?? 0)")
                print("  last success \(a["lastSuccessAt"] as? String ?? "never")")
                if let e = a["lastError"] as? String { print("  last error   \(a["lastErrorAt"] as? String ?? ""): \(e)") }
                for i in a["bulkImports"] as? [[String: Any]] ?? [] { print("  " + Self.bulkLine(i)) }
            }
        }

        /// `bulk      /syncs/12 active, 5000 records, polled 7 times, since <time>` (when done: its counts).
        static func bulkLine(_ i: [String: Any]) -> String {
            var line = "bulk      \(i["sync"] ?? "?") \(i["status"] ?? "?"), \(i["records"] ?? 0) records, polled \(i["polls"] ?? 0) times"
            if let done = i["finishedAt"] as? String {
                line += ", done \(done): created \(i["created"] ?? 0), updated \(i["updated"] ?? 0), rejected \(i["rejected"] ?? 0)"
            } else {
                line += ", since \(i["startedAt"] ?? "?")"
            }
            return line
        }
    }

    struct Customer: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A customer's sync with each CRM adapter.")
        @Argument var id: String
        @OptionGroup var gateway: GatewayOptions
        func run() async throws { printJSON(try await gateway.admin("GET", "/api/v1/customers/\(queryValue(id))/crm")) }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Queue every customer an adapter dead-lettered again.")
        @Argument var adapter: String
        @OptionGroup var gateway: GatewayOptions
        func run() async throws { printJSON(try await gateway.admin("POST", "/api/v1/crm/\(queryValue(adapter))/dead-letters/replay", json: "{}")) }
    }
}

struct Scoring: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Lead scoring.", subcommands: [Reload.self])

    struct Reload: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Read the scoring rules file again (the gateway says what is wrong with a bad one).")
        @OptionGroup var gateway: GatewayOptions
        func run() async throws { printJSON(try await gateway.admin("POST", "/api/v1/scoring/reload", json: "{}")) }
    }
}
