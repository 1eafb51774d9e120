import ArgumentParser
import Foundation

/// `scrmctl redis status`: the gateway's Redis, node by node.
struct Redis: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The gateway's Redis: nodes, slots and key balance.", subcommands: [Status.self])

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Each node (a cluster's masters with their slots, then replicas): state, keys, memory.")
        @OptionGroup var gateway: GatewayOptions
        @Flag(help: "Print the API's JSON instead of a table.") var json = false

        func run() async throws {
            let r = try await gateway.admin("GET", "/api/v1/redis")
            if json { return printJSON(r) }
            let nodes = r["nodes"] as? [[String: Any]] ?? []
            if (r["mode"] as? String) == "cluster" {
                let imbalance = (r["keyImbalancePercent"] as? Double).map { String(format: "%.1f%%", $0) } ?? "n/a"
                print("cluster: \(nodes.filter { $0["role"] as? String == "master" }.count) masters, \(r["slotsCovered"] ?? 0) of 16384 slots served, keys within ±\(imbalance) of the mean")
            } else {
                print("single Redis")
            }
            print(Self.row("NODE", "ROLE", "STATE", "SLOTS", "KEYS", "MEMORY", "RTT"))
            for n in nodes {
                let role = (n["role"] as? String ?? "?") + ((n["master"] as? String).map { " of \($0)" } ?? "")
                let memory = (n["usedMemoryBytes"] as? Int).map { String(format: "%.1f MB", Double($0) / 1_048_576) } ?? "-"
                let rtt = (n["latencyMicros"] as? Int).map { "\($0) µs" } ?? "-"
                print(Self.row(n["endpoint"] as? String ?? "?", role, n["state"] as? String ?? "?", (n["slots"] as? Int).map(String.init) ?? "-",
                    (n["keys"] as? Int).map(String.init) ?? "-", memory, rtt))
            }
        }

        static func row(_ columns: String...) -> String {
            zip(columns, [22, 30, 8, 7, 10, 10, 8]).map { $0.padding(toLength: max($1, $0.count + 1), withPad: " ", startingAt: 0) }.joined()
        }
    }
}
