import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import Mustache

/// The console's templates and assets, from the binary: pages rendered on the server with
/// swift-mustache, under a strict Content-Security-Policy (no inline script or style).
enum ConsolePages {
    static let templates: [(String, [UInt8])] = [
        ("layout", PackageResources.layout_mustache), ("login", PackageResources.login_mustache),
        ("dashboard", PackageResources.dashboard_mustache), ("dashboard_panels", PackageResources.dashboard_panels_mustache),
        ("dashboard_body", PackageResources.dashboard_body_mustache), ("problem", PackageResources.problem_mustache),
        ("customers", PackageResources.customers_mustache), ("customer", PackageResources.customer_mustache),
        ("audiences", PackageResources.audiences_mustache), ("campaigns", PackageResources.campaigns_mustache),
        ("campaign-new", PackageResources.campaign_new_mustache), ("campaign_preview", PackageResources.campaign_preview_mustache),
        ("campaign", PackageResources.campaign_mustache), ("journeys", PackageResources.journeys_mustache),
        ("journey-edit", PackageResources.journey_edit_mustache), ("journey", PackageResources.journey_mustache),
        ("ops_tabs", PackageResources.ops_tabs_mustache), ("imports", PackageResources.imports_mustache), ("import", PackageResources.import_mustache), ("operations", PackageResources.operations_mustache), ("audit", PackageResources.audit_mustache),
        ("channels", PackageResources.channels_mustache),
        ("keys", PackageResources.keys_mustache), ("system", PackageResources.system_mustache),
    ]

    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, bytes) in templates {
            // The templates are part of the binary: one that does not parse is a build mistake (a test renders each).
            try! library.register(String(decoding: bytes, as: UTF8.self), named: name)
        }
        return library
    }()

    static let assets: [String: (type: String, bytes: [UInt8])] = [
        "console.css": ("text/css; charset=utf-8", PackageResources.console_css),
        "console.js": ("text/javascript; charset=utf-8", PackageResources.console_js),
    ]

    static let securityHeaders: [(HTTPField.Name, String)] = [
        (HTTPField.Name("Content-Security-Policy")!,
         "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
        (HTTPField.Name("X-Content-Type-Options")!, "nosniff"), (HTTPField.Name("Referrer-Policy")!, "same-origin"),
        (HTTPField.Name("Cache-Control")!, "no-store"),
    ]

    /// A page: `template` rendered with `context`, the language's words as `t`.
    static func page(_ template: String, lang: String, context: [String: Any], status: HTTPResponse.Status = .ok) -> Response {
        let words = ConsoleStrings.table[lang] ?? ConsoleStrings.table["en"]!
        var full = labellingStates(withoutEmptyText(context) ?? [:], words: words) as? [String: Any] ?? [:]
        full["lang"] = lang
        full["t"] = words
        let html = library.render(full, withTemplate: template) ?? ""
        var headers: HTTPFields = [.contentType: "text/html; charset=utf-8"]
        for (name, value) in securityHeaders { headers[name] = value }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// Mustache treats "" as present (`{{#name}}` renders); the console means absent. Drops empty
    /// strings at every depth so that `{{#name}}...{{/name}}{{^name}}...{{/name}}` reads as intended.
    static func withoutEmptyText(_ value: Any) -> Any? {
        switch value {
        case let s as String: return s.isEmpty ? nil : s
        case let d as [String: Any]: return d.compactMapValues(withoutEmptyText)
        case let a as [[String: Any]]: return a.map { $0.compactMapValues(withoutEmptyText) }
        case let a as [Any]: return a.compactMap(withoutEmptyText)
        default: return value
        }
    }

    /// Every `state` (a campaign's, a message's, an import's...) at any depth gets a `stateLabel` in
    /// the reader's language (`state_<state>` in strings.json, else the state itself); templates show
    /// the label and keep the state in `data-state` and the class, which scripts and styles read.
    static func labellingStates(_ value: Any, words: [String: String]) -> Any {
        switch value {
        case var d as [String: Any]:
            for (k, v) in d { d[k] = labellingStates(v, words: words) }
            if let state = d["state"] as? String { d["stateLabel"] = words["state_" + state] ?? state }
            return d
        case let a as [[String: Any]]: return a.map { labellingStates($0, words: words) }
        case let a as [Any]: return a.map { labellingStates($0, words: words) }
        default: return value
        }
    }

    /// A page that only says what went wrong (no session needed: storage down, a stale form).
    static func problem(status: HTTPResponse.Status, message: String, lang: String) -> Response {
        page("problem", lang: lang, context: ["message": message], status: status)
    }

    static func redirect(_ location: String, cookies: [String] = []) -> Response {
        var headers: HTTPFields = [.location: location]
        for (name, value) in securityHeaders { headers[name] = value }
        for c in cookies { headers.append(HTTPField(name: .setCookie, value: c)) }
        return Response(status: .seeOther, headers: headers)
    }

    /// A console page's query as a browser writes it for a GET form: `+` is a space (Hummingbird's
    /// `queryParameters` keeps it a `+`, so "vip & !churned" typed and counted would read "vip+&+!churned").
    static func query(_ request: Request) -> [String: String] { FormEncoding.decode(request.uri.query ?? "") }

    /// A value for a URL query (everything but letters and digits percent-encoded).
    static func queryValue(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "" }

    /// A console path to return to; anything else (another site, `//host`) is the dashboard.
    static func safeBack(_ path: String?) -> String {
        guard let path, path.hasPrefix("/console"), !path.hasPrefix("//"), !path.contains("\\"), !path.contains("\r"), !path.contains("\n") else {
            return "/console"
        }
        return path
    }
}
