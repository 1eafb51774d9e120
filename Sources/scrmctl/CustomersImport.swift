import ArgumentParser
import Foundation

extension Customers {
    /// `scrmctl customers import people.csv`: uploads, then follows the job with a progress bar.
    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import customers from a CSV (header row) or JSONL file, with a progress bar.",
            discussion: """
                Columns: phone, email, openid + account, unionid, external_id, profile.<attribute>, tags
                (;-separated), consent.sms, consent.email. Rows that fail a check are listed with their line
                and reason; the others are imported. --dry-run checks the file and stores nothing.
                """)
        @Argument(help: "A .csv, .jsonl or .ndjson file.") var file: String
        @Flag(help: "Check the file only; store nothing.") var dryRun = false
        @Option(help: "A label for the job.") var source: String?
        @Option(help: "Rejected lines to print.") var show = 20
        @OptionGroup var gateway: GatewayOptions

        func run() async throws {
            guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
            let type = file.lowercased().hasSuffix(".csv") ? "text/csv" : "application/x-ndjson"
            var query = dryRun ? "?dryRun=true" : "?"
            if let source { query += "&source=\(queryValue(source))" }
            var job = try await gateway.admin("POST", "/api/v1/customers/import" + query, body: Array(data), contentType: type)
            if !dryRun, let id = job["id"] as? String {
                try await follow(every: 0.5) {
                    job = try await gateway.admin("GET", "/api/v1/imports/\(queryValue(id))")
                    let state = job["state"] as? String ?? "?"
                    return (Self.line(job), ["completed", "failed"].contains(state))
                }
            }
            print(Self.summary(job))
            let rejections = job["rejections"] as? [[String: Any]] ?? []
            for r in rejections.prefix(show) { print("  line \(r["line"] ?? "?"): \(r["reason"] ?? "")") }
            if rejections.count > show { print("  ... \((job["rejected"] as? Int ?? rejections.count) - show) more (GET /api/v1/imports/\(job["id"] ?? ""))") }
        }

        static func line(_ j: [String: Any]) -> String {
            let percent = Double("\(j["percentApplied"] ?? "0")") ?? 0
            return String(
                format: "%@ %5.1f%%  %@  read %@  created %@  updated %@  merged %@  rejected %@", progressBar(percent), percent, "\(j["state"] ?? "")",
                "\(j["rowsRead"] ?? 0)", "\(j["created"] ?? 0)", "\(j["updated"] ?? 0)", "\(j["merged"] ?? 0)", "\(j["rejected"] ?? 0)")
        }

        static func summary(_ j: [String: Any]) -> String {
            if j["dryRun"] as? Bool == true {
                return "dry run: \(j["rowsRead"] ?? 0) rows read, \(j["valid"] ?? 0) valid, \(j["rejected"] ?? 0) rejected; nothing stored"
            }
            let error = (j["error"] as? String).map { " (\($0))" } ?? ""
            return "import \(j["id"] ?? ""): \(j["state"] ?? "")\(error): \(j["rowsRead"] ?? 0) rows read, \(j["created"] ?? 0) created, "
                + "\(j["updated"] ?? 0) updated, \(j["merged"] ?? 0) merged, \(j["rejected"] ?? 0) rejected"
        }
    }
}
