import ArgumentParser
import Foundation
import GatewayCore

struct Audience: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Preview an audience, or export it as CSV.", subcommands: [Preview.self, Export.self])

    struct Preview: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "How many customers a tag expression selects, with a sample.",
            discussion: #"Example: scrmctl audience preview "vip & (expo-2026 | webinar) & !churned & consent:sms""#)
        @Argument(help: "Tags with & | ! and parentheses; stage:, tier:, consent:, account: predicates; score>=N.") var expression: String
        @Option(help: "Sample size (0...100).") var sample = 10
        @OptionGroup var gateway: GatewayOptions

        func run() async throws {
            let body = try JSONSerialization.data(withJSONObject: ["expression": expression, "sample": sample])
            let r = try await gateway.admin("POST", "/api/v1/audiences/preview", json: String(decoding: body, as: UTF8.self))
            print("\(r["count"] ?? 0) customers  (\(r["elapsedMs"] ?? "?") ms)")
            for w in r["warnings"] as? [String] ?? [] { print("warning: \(w)") }
            let ids = r["sample"] as? [String] ?? []
            if !ids.isEmpty { print("sample: " + ids.joined(separator: " ")) }
        }
    }
}

struct Campaigns: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "campaign",
        abstract: "Create, run and follow campaigns.",
        subcommands: [Create.self, List.self, Show.self, Start.self, Pause.self, Resume.self, Cancel.self, Watch.self, Report.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a campaign (a draft) from a YAML or JSON file.", discussion: "See examples/campaign.yaml for every field.")
        @Argument(help: "The campaign file.") var file: String
        @OptionGroup var gateway: GatewayOptions

        func run() async throws {
            let text: String
            do { text = try String(contentsOfFile: file, encoding: .utf8) } catch { throw ValidationError("cannot read \(file): \(error.localizedDescription)") }
            let json = try Self.json(fromYAML: text, file: file)
            let c = try await gateway.admin("POST", "/api/v1/campaigns", json: json)
            print("created \(c["id"] ?? "?") (\(c["state"] ?? "?")): \(c["name"] ?? "")")
            print("start it with: scrmctl campaign start \(c["id"] ?? "ID")")
        }

        /// YAML (a superset of JSON) to JSON text; YAML timestamps become ISO 8601 strings again.
        static func json(fromYAML text: String, file: String) throws -> String {
            let value: JSONValue
            do { value = try SafeYAML.json(text) } catch { throw ValidationError("\(file) is not valid YAML: \(error)") }
            guard case .object = value else { throw ValidationError("\(file) must be a mapping (name, audience, channels, ...)") }
            return value.text
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Campaigns, newest first.")
        @Option var limit = 20
        @OptionGroup var gateway: GatewayOptions

        func run() async throws {
            let list = try await gateway.admin("GET", "/api/v1/campaigns?limit=\(limit)")["campaigns"] as? [[String: Any]] ?? []
            var rows = [["ID", "STATE", "PROGRESS", "SENT", "NAME"]]
            for c in list {
                let p = c["progress"] as? [String: Any] ?? [:]
                rows.append(["\(c["id"] ?? "")", "\(c["state"] ?? "")", "\(p["percent"] ?? "0")%", "\(p["sent"] ?? 0)", "\(c["name"] ?? "")"])
            }
            printTable(rows)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One campaign with its progress (JSON).")
        @Argument var id: String
        @OptionGroup var gateway: GatewayOptions
        func run() async throws { printJSON(try await gateway.admin("GET", "/api/v1/campaigns/\(queryValue(id))")) }
    }

    struct Start: CampaignAction {
        static let configuration = CommandConfiguration(abstract: "Start a draft: now, or at its startAt (scheduled).")
        static let action = "start"
        @Argument var id: String
        @OptionGroup var gateway: GatewayOptions
    }

    struct Pause: CampaignAction {
        static let configuration = CommandConfiguration(abstract: "Pause a running campaign: nothing more is sent until resume.")
        static let action = "pause"
        @Argument var id: String
        @OptionGroup var gateway: GatewayOptions
    }

    struct Resume: CampaignAction {
        static let configuration = CommandConfiguration(abstract: "Resume a paused campaign where it stopped.")
        static let action = "resume"
        @Argument var id: String
        @OptionGroup var gateway: GatewayOptions
    }

    struct Cancel: CampaignAction {
        static let configuration = CommandConfiguration(abstract: "Cancel a campaign: what was not sent is skipped.")
        static let action = "cancel"
        @Argument var id: String
        @OptionGroup var gateway: GatewayOptions
    }

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Follow a campaign live: progress bar, rate, ETA; ends when it does.")
        @Argument var id: String
        @Option(help: "Seconds between refreshes.") var every = 1.0
        @OptionGroup var gateway: GatewayOptions

        func run() async throws {
            try await follow(every: every) {
                let c = try await gateway.admin("GET", "/api/v1/campaigns/\(queryValue(id))")
                let state = c["state"] as? String ?? "?"
                return (Self.line(c), ["completed", "cancelled", "expired", "draft"].contains(state))
            }
        }

        static func line(_ c: [String: Any]) -> String {
            let p = c["progress"] as? [String: Any] ?? [:]
            let percent = Double("\(p["percent"] ?? "0")") ?? 0
            let bar = progressBar(percent)
            let eta = (p["etaSeconds"] as? Int).map { Self.duration($0) } ?? "-"
            return String(
                format: "%@ %5.1f%%  %@  sent %@  skipped %@  failed %@  deferred %@  %@/s  ETA %@", bar, percent, "\(c["state"] ?? "")",
                "\(p["sent"] ?? 0)", "\(p["skipped"] ?? 0)", "\(p["failed"] ?? 0)", "\(p["deferred"] ?? 0)", "\(p["ratePerSecond"] ?? "0")", eta)
        }

        static func duration(_ s: Int) -> String { s >= 3600 ? "\(s / 3600)h\(s % 3600 / 60)m" : s >= 60 ? "\(s / 60)m\(s % 60)s" : "\(s)s" }
    }

    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The campaign's report as tables: per variant, per channel, reasons.")
        @Argument var id: String
        @OptionGroup var gateway: GatewayOptions

        func run() async throws {
            let r = try await gateway.admin("GET", "/api/v1/campaigns/\(queryValue(id))/report")
            print("\(r["name"] ?? "") (\(r["id"] ?? id)): \(r["state"] ?? ""), audience \(r["audienceSize"] ?? "-")\n")
            let metrics = ["planned", "queued", "sent", "delivered", "failed", "skipped", "deferred", "holdout", "fellBack", "clicked", "opened"]
            for (title, key) in [("VARIANT", "variants"), ("CHANNEL", "channels")] {
                let groups = r[key] as? [String: [String: Any]] ?? [:]
                var rows = [[title] + metrics.map { $0.uppercased() }]
                for name in groups.keys.sorted() { rows.append([name] + metrics.map { "\(groups[name]?[$0] ?? 0)" }) }
                let totals = r["totals"] as? [String: Any] ?? [:]
                rows.append(["total"] + metrics.map { "\(totals[$0] ?? 0)" })
                printTable(rows)
                print("")
            }
            let reasonTables = [
                ("SKIPPED BECAUSE", "skipped"), ("FAILED BECAUSE", "failed"), ("FELL BACK TO", "fellBackTo"), ("FELL BACK BECAUSE", "fellBackReasons"),
            ]
            for (title, key) in reasonTables {
                let reasons = r[key] as? [String: Any] ?? [:]
                guard !reasons.isEmpty else { continue }
                printTable([[title, "COUNT"]] + reasons.keys.sorted().map { [$0, "\(reasons[$0] ?? 0)"] })
                print("")
            }
            if let c = r["conversions"] as? [String: Any] { Self.printConversions(c) }
            for note in r["notes"] as? [String] ?? [] { print("note: \(note)") }
        }

        /// Conversions per variant and for the hold-out, with each variant's lift and its 95% interval.
        static func printConversions(_ c: [String: Any]) {
            func pct(_ x: Any?) -> String { String(format: "%.2f%%", ((x as? Double) ?? Double("\(x ?? 0)") ?? 0) * 100) }
            if let goal = c["goal"] as? [String: Any] { print("GOAL: \(goal["event"] ?? "?") within \(goal["withinHours"] ?? "?") h") }
            var rows = [["GROUP", "SENT", "DELIVERED", "CLICKED", "CONVERTED", "RATE", "LIFT", "95% CI"]]
            for v in c["variants"] as? [[String: Any]] ?? [] {
                let lift = v["liftVsHoldout"] as? [String: Any]
                let ci = (lift?["ci95"] as? [Any])?.map { pct($0) }.joined(separator: " .. ") ?? "-"
                rows.append([
                    "\(v["name"] ?? "")", "\(v["sent"] ?? 0)", "\(v["delivered"] ?? 0)", "\(v["clicked"] ?? 0)", "\(v["converted"] ?? 0)",
                    pct(v["conversionRate"]), lift.map { pct($0["absolute"]) } ?? "-", ci,
                ])
            }
            let h = c["holdout"] as? [String: Any] ?? [:]
            rows.append(["holdout", "\(h["size"] ?? 0)", "-", "-", "\(h["converted"] ?? 0)", pct(h["conversionRate"]), "", ""])
            printTable(rows)
            print("\(c["verdict"] ?? "")\n")
        }
    }
}

/// start, pause, resume, cancel: the same call with another verb.
protocol CampaignAction: AsyncParsableCommand {
    static var action: String { get }
    var id: String { get }
    var gateway: GatewayOptions { get }
}

extension CampaignAction {
    func run() async throws {
        let c = try await gateway.admin("POST", "/api/v1/campaigns/\(queryValue(id))/\(Self.action)", json: "{}")
        var line = "\(c["id"] ?? id): \(c["state"] ?? "?")"
        if let size = c["audienceSize"] as? Int { line += ", audience of \(size)" }
        print(line)
    }
}

/// Left-aligned columns, two spaces apart.
func printTable(_ rows: [[String]]) {
    guard !rows.isEmpty else { return }
    print(tableText(rows), terminator: "")
}

/// Rows as aligned columns, one line each.
func tableText(_ rows: [[String]]) -> String {
    guard let first = rows.first else { return "" }
    let widths = (0..<first.count).map { i in rows.map { i < $0.count ? $0[i].count : 0 }.max() ?? 0 }
    return rows.map { row in
        row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }.joined(separator: "  ") + "\n"
    }.joined()
}
