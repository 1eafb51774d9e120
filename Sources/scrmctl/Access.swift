import ArgumentParser
import Foundation

/// `scrmctl keys create|list|revoke` and `scrmctl audit`.
struct APIKeys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "API keys with a role (admin, marketer, analyst, integration, support).", subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key; it is printed once and cannot be shown again.")
        @Argument(help: "What the key is for, e.g. \"web forms\".") var name: String
        @Option(help: "admin, marketer, analyst, integration or support.") var role: String
        @Option(help: "Extra permission beyond the role (customers.export).") var grant: [String] = []
        @Option(help: "ISO 8601 time the key stops working.") var expires: String?
        @OptionGroup var gateway: GatewayOptions

        func run() async throws {
            var body: [String: Any] = ["name": name, "role": role, "grants": grant]
            if let expires { body["expiresAt"] = expires }
            let json = String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)
            let r = try await gateway.admin("POST", "/api/v1/keys", json: json)
            print("created \(r["prefix"] ?? "?") (\(r["role"] ?? "?")): \(r["name"] ?? "")")
            print("key (shown once; store it now): \(r["key"] ?? "?")")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every key: prefix, role, created, last used, expiry, revoked.")
        @OptionGroup var gateway: GatewayOptions

        func run() async throws {
            let keys = try await gateway.admin("GET", "/api/v1/keys")["keys"] as? [[String: Any]] ?? []
            if keys.isEmpty { print("no API keys (scrmctl keys create NAME --role ROLE)") }
            for k in keys {
                let state = k["revokedAt"] as? String != nil ? "revoked \(k["revokedAt"]!)" : "expires \(k["expiresAt"] as? String ?? "never")"
                print("\(k["prefix"] ?? "?")  \(k["role"] ?? "?")  \(k["name"] ?? "")  created \(k["createdAt"] ?? "?")  last used \(k["lastUsedAt"] as? String ?? "never")  \(state)")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key (its id: the 12 characters after scrm_).")
        @Argument var id: String
        @OptionGroup var gateway: GatewayOptions
        func run() async throws {
            let id = self.id.hasPrefix("scrm_") ? String(self.id.dropFirst(5).prefix(12)) : self.id
            let r = try await gateway.admin("DELETE", "/api/v1/keys/\(queryValue(id))")
            print("revoked \(r["prefix"] ?? id) at \(r["revokedAt"] ?? "?")")
        }
    }
}

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The audit log: who changed, exported or erased what.")
    @Option(help: "From this time (ISO 8601).") var since: String?
    @Option(help: "Only this actor (key:<id>, operator:<name>, bootstrap).") var actor: String?
    @Option(help: "Most entries to show.") var limit = 100
    @OptionGroup var gateway: GatewayOptions

    func run() async throws {
        var query = ["limit=\(limit)"]
        if let since { query.append("since=\(queryValue(since))") }
        if let actor { query.append("actor=\(queryValue(actor))") }
        let r = try await gateway.admin("GET", "/api/v1/audit?" + query.joined(separator: "&"))
        for e in r["entries"] as? [[String: Any]] ?? [] {
            let targets = (e["targets"] as? [String] ?? []).joined(separator: ",")
            print("\(e["at"] ?? "?")  \(e["actor"] ?? "?") (\(e["role"] ?? "?"))  \(e["method"] ?? "?") \(e["route"] ?? "?")  \(targets)  \(e["status"] ?? "?") \(e["outcome"] ?? "?")")
        }
    }
}
