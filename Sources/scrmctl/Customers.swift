import ArgumentParser
import Foundation

struct Customers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Look customers up, import them, set their profile and consent, read timelines, bind identities.",
        subcommands: [Lookup.self, Get.self, SetFields.self, Import.self, Timeline.self, Bind.self]
    )

    struct Lookup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Find a customer by openid (with --account), unionid, phone or email.")
        @Option var account: String?
        @Option var openid: String?
        @Option var unionid: String?
        @Option var phone: String?
        @Option var email: String?
        @OptionGroup var gateway: GatewayOptions

        func run() async throws {
            var q = [String]()
            if let account { q.append("account=\(queryValue(account))") }
            for (k, v) in [("openid", openid), ("unionid", unionid), ("phone", phone), ("email", email)] {
                if let v { q.append("\(k)=\(queryValue(v))") }
            }
            printJSON(try await gateway.admin("GET", "/api/v1/customers/lookup?" + q.joined(separator: "&")))
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one customer.")
        @Argument var id: String
        @OptionGroup var gateway: GatewayOptions
        func run() async throws { printJSON(try await gateway.admin("GET", "/api/v1/customers/\(queryValue(id))")) }
    }

    struct Timeline: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a customer's interactions, newest first.")
        @Argument var id: String
        @Option var limit = 20
        @OptionGroup var gateway: GatewayOptions
        func run() async throws { printJSON(try await gateway.admin("GET", "/api/v1/customers/\(queryValue(id))/timeline?limit=\(limit)")) }
    }

    struct Bind: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Bind a phone, email or unionid to a customer (merges if it belongs to another).")
        @Argument var id: String
        @Option var phone: String?
        @Option var email: String?
        @Option var unionid: String?
        @OptionGroup var gateway: GatewayOptions

        func run() async throws {
            guard let (type, value) = [("phone", phone), ("email", email), ("unionid", unionid)].first(where: { $0.1 != nil }).map({ ($0.0, $0.1!) }) else {
                throw ValidationError("give --phone, --email or --unionid")
            }
            let body = try JSONSerialization.data(withJSONObject: ["type": type, "value": value])
            printJSON(try await gateway.admin("POST", "/api/v1/customers/\(queryValue(id))/identities", json: String(decoding: body, as: UTF8.self)))
        }
    }
}

struct Tags: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List tags, tag and untag customers.", subcommands: [List.self, Add.self, Remove.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every tag with its number of customers.")
        @OptionGroup var gateway: GatewayOptions
        func run() async throws {
            let tags = try await gateway.admin("GET", "/api/v1/tags")["tags"] as? [[String: Any]] ?? []
            for t in tags { print("\(t["name"] ?? "")\t\(t["customers"] ?? 0)") }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Tag customers: scrmctl tags add vip ID [ID...]")
        @Argument var name: String
        @Argument var ids: [String]
        @OptionGroup var gateway: GatewayOptions
        func run() async throws { printJSON(try await Tags.applyTag(name, ids: ids, method: "POST", gateway: gateway)) }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Untag customers: scrmctl tags remove vip ID [ID...]")
        @Argument var name: String
        @Argument var ids: [String]
        @OptionGroup var gateway: GatewayOptions
        func run() async throws { printJSON(try await Tags.applyTag(name, ids: ids, method: "DELETE", gateway: gateway)) }
    }

    /// POST adds the tag to the customers, DELETE removes it.
    static func applyTag(_ name: String, ids: [String], method: String, gateway: GatewayOptions) async throws -> [String: Any] {
        let body = try JSONSerialization.data(withJSONObject: ["customerIds": ids])
        return try await gateway.admin(method, "/api/v1/tags/\(queryValue(name))/customers", json: String(decoding: body, as: UTF8.self))
    }
}
