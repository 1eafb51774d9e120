import ArgumentParser
import Foundation

extension Customers {
    /// `scrmctl customers set ID city=Shanghai spend=1200 consent.sms=granted timezone=Asia/Shanghai title=`
    struct SetFields: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set",
            abstract: "Set profile attributes, the time zone or consent of a customer (PATCH /api/v1/customers/{id}).",
            discussion: """
                Each argument is field=value: a profile attribute (city=Shanghai, or profile.city=Shanghai),
                timezone=Asia/Shanghai, or consent.sms / consent.email = granted | revoked. An empty value
                (title=) removes the field. Values are checked against customers.attributes by the gateway;
                a bad one is refused, naming it, and nothing changes.
                """)
        @Argument var id: String
        @Argument(help: "field=value pairs") var assignments: [String]
        @Option(help: "Who records the consent changes (default api).") var source: String?
        @OptionGroup var gateway: GatewayOptions

        func run() async throws {
            printJSON(try await gateway.admin("PATCH", "/api/v1/customers/\(queryValue(id))", json: try Self.body(assignments, source: source)))
        }

        /// The PATCH body for the assignments.
        static func body(_ assignments: [String], source: String?) throws -> String {
            var profile = [String: Any]()
            var consent = [String: Any]()
            var body = [String: Any]()
            for a in assignments {
                guard let eq = a.firstIndex(of: "="), eq != a.startIndex else { throw ValidationError("\(a): expected field=value") }
                let field = String(a[..<eq])
                let raw = String(a[a.index(after: eq)...])
                let value: Any = raw.isEmpty ? NSNull() : raw
                if field == "timezone" {
                    body["timezone"] = value
                } else if field.hasPrefix("consent.") {
                    consent[String(field.dropFirst("consent.".count))] = value
                } else {
                    profile[field.hasPrefix("profile.") ? String(field.dropFirst("profile.".count)) : field] = value
                }
            }
            guard !assignments.isEmpty else { throw ValidationError("give at least one field=value") }
            if !profile.isEmpty { body["profile"] = profile }
            if !consent.isEmpty { body["consent"] = consent }
            if let source { body["source"] = source }
            return String(decoding: try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]), as: UTF8.self)
        }
    }
}
