import ArgumentParser
import Foundation

struct Journeys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "journey",
        abstract: "Create, edit and run journeys (multi-step automations).",
        subcommands: [Create.self, Edit.self, List.self, Show.self, Watch.self, Activate.self, Pause.self, Resume.self, Archive.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a journey (a draft) from a YAML or JSON file.")
        @Argument(help: "The journey file.") var file: String
        @OptionGroup var gateway: GatewayOptions

        func run() async throws {
            let json = try Campaigns.Create.json(fromYAML: try read(file), file: file)
            let j = try await gateway.admin("POST", "/api/v1/journeys", json: json)
            print("created \(j["id"] ?? "?") (\(j["state"] ?? "?"), version \(j["version"] ?? "?")): \(j["name"] ?? "")")
            print("activate it with: scrmctl journey activate \(j["id"] ?? "ID")")
        }
    }

    struct Edit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Save a new version from a file: new enrolments take it, customers already in finish on theirs.")
        @Argument(help: "The journey id.") var id: String
        @Argument(help: "The journey file.") var file: String
        @OptionGroup var gateway: GatewayOptions

        func run() async throws {
            let current = try await gateway.admin("GET", "/api/v1/journeys/\(queryValue(id))")
            let definition = try Campaigns.Create.json(fromYAML: try read(file), file: file)
            let j = try await gateway.admin(
                "PUT", "/api/v1/journeys/\(queryValue(id))", json: #"{"baseVersion":\#(current["version"] ?? 0),"definition":\#(definition)}"#)
            print("\(j["id"] ?? id): version \(j["version"] ?? "?") saved (\(j["state"] ?? "?"))")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Journeys, newest first.")
        @OptionGroup var gateway: GatewayOptions

        func run() async throws {
            let r = try await gateway.admin("GET", "/api/v1/journeys")
            var rows = [["ID", "STATE", "VERSION", "STEPS", "NAME"]]
            for j in r["journeys"] as? [[String: Any]] ?? [] {
                let steps = ((j["definition"] as? [String: Any])?["steps"] as? [Any])?.count ?? 0
                rows.append(["\(j["id"] ?? "")", "\(j["state"] ?? "")", "\(j["version"] ?? "")", String(steps), "\(j["name"] ?? "")"])
            }
            printTable(rows)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One journey: its state, version and steps with their counts.")
        @Argument(help: "The journey id.") var id: String
        @OptionGroup var gateway: GatewayOptions

        func run() async throws {
            print(Self.text(try await gateway.admin("GET", "/api/v1/journeys/\(queryValue(id))"), id: id))
        }

        /// The journey's header and its steps as a table: where customers are, what each step did.
        static func text(_ j: [String: Any], id: String) -> String {
            let report = j["report"] as? [String: Any] ?? [:]
            var out = "\(j["name"] ?? "") (\(j["id"] ?? id)): \(j["state"] ?? ""), version \(j["version"] ?? "")\n"
            out += "enrolled \(report["enrolled"] ?? 0)  in it now \(report["active"] ?? 0)  completed \(report["completed"] ?? 0)"
            out += "  exited \(report["exited"] ?? 0)  converted \(report["converted"] ?? 0)"
            if let a = report["audience"] as? [String: Any] { out += "  audience \(a["members"] ?? 0) (\(a["toEnrol"] ?? 0) to enrol)" }
            out += "\n\n"
            let counts = Dictionary(uniqueKeysWithValues: (report["steps"] as? [[String: Any]] ?? []).map { ("\($0["id"] ?? "")", $0) })
            var rows = [["STEP", "KIND", "NEXT", "ENTERED", "WAITING", "DONE", "SKIPPED", "SENT", "DELIVERED", "CLICKED", "CONVERTED", "EXITED"]]
            for s in ((j["definition"] as? [String: Any])?["steps"] as? [[String: Any]]) ?? [] {
                let kind = ["send", "wait", "branch", "tag", "update", "crm", "exit"].first { s[$0] != nil } ?? "?"
                var next = "\(s["next"] ?? "")"
                if let b = s["branch"] as? [String: Any] { next = "then \(b["then"] ?? "") else \(b["else"] ?? "")" }
                let c = counts["\(s["id"] ?? "")"] ?? [:]
                func n(_ k: String) -> String { c[k].map { "\($0)" } ?? "-" }
                let skipped = (c["skipped"] as? [String: Int] ?? [:]).sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
                rows.append([
                    "\(s["id"] ?? "")", kind, next, n("entered"), n("waiting"), n("completed"), skipped.isEmpty ? "0" : skipped, n("sent"), n("delivered"),
                    n("clicked"), n("converted"), n("exited"),
                ])
            }
            return out + tableText(rows)
        }
    }

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Follow a journey live: its steps with counts, refreshed until Ctrl-C.")
        @Argument(help: "The journey id.") var id: String
        @Option(help: "Seconds between refreshes.") var every = 2.0
        @Option(help: "Stop after this many refreshes (0 = never).") var count = 0
        @OptionGroup var gateway: GatewayOptions

        func run() async throws {
            let tty = isatty(1) == 1
            var shown = 0
            while count == 0 || shown < count {
                let text = Show.text(try await gateway.admin("GET", "/api/v1/journeys/\(queryValue(id))"), id: id)
                print((tty ? "\u{1B}[H\u{1B}[2J" : "") + text)
                shown += 1
                if count == 0 || shown < count { try await Task.sleep(for: .milliseconds(Int(every * 1000))) }
            }
        }
    }

    struct Activate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "draft -> active: it enrols customers.")
        @Argument var id: String
        @OptionGroup var gateway: GatewayOptions
        func run() async throws { try await act(gateway, id, "activate") }
    }

    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "active -> paused.")
        @Argument var id: String
        @OptionGroup var gateway: GatewayOptions
        func run() async throws { try await act(gateway, id, "pause") }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "paused -> active.")
        @Argument var id: String
        @OptionGroup var gateway: GatewayOptions
        func run() async throws { try await act(gateway, id, "resume") }
    }

    struct Archive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Archive a journey: it enrols nobody and can no longer be edited.")
        @Argument var id: String
        @OptionGroup var gateway: GatewayOptions
        func run() async throws { try await act(gateway, id, "archive") }
    }

    static func act(_ gateway: GatewayOptions, _ id: String, _ action: String) async throws {
        let j = try await gateway.admin("POST", "/api/v1/journeys/\(queryValue(id))/\(action)", json: "{}")
        print("\(j["id"] ?? id): \(j["state"] ?? "?")")
    }
}

private func read(_ file: String) throws -> String {
    do { return try String(contentsOfFile: file, encoding: .utf8) } catch { throw ValidationError("cannot read \(file): \(error.localizedDescription)") }
}
