import ArgumentParser
import Foundation

struct Journeys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "journey",
        abstract: "Create, edit and run journeys (multi-step automations).",
        subcommands: [Create.self, Edit.self, List.self, Show.self, Activate.self, Pause.self, Resume.self, Archive.self]
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
        static let configuration = CommandConfiguration(abstract: "One journey: its state, version and steps.")
        @Argument(help: "The journey id.") var id: String
        @OptionGroup var gateway: GatewayOptions

        func run() async throws {
            let j = try await gateway.admin("GET", "/api/v1/journeys/\(queryValue(id))")
            print("\(j["name"] ?? "") (\(j["id"] ?? id)): \(j["state"] ?? ""), version \(j["version"] ?? "")\n")
            var rows = [["STEP", "KIND", "NEXT"]]
            for s in ((j["definition"] as? [String: Any])?["steps"] as? [[String: Any]]) ?? [] {
                let kind = ["send", "wait", "branch", "tag", "update", "crm", "exit"].first { s[$0] != nil } ?? "?"
                var next = "\(s["next"] ?? "")"
                if let b = s["branch"] as? [String: Any] { next = "then \(b["then"] ?? "") else \(b["else"] ?? "")" }
                rows.append(["\(s["id"] ?? "")", kind, next])
            }
            printTable(rows)
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
