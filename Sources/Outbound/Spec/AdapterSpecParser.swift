import Foundation
import GatewayCore
import Store

/// A spec that cannot be used, with its file and key path.
public struct AdapterSpecError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let path: String
    public let reason: String

    public var description: String { "\(file): \(path.isEmpty ? "<root>" : path): \(reason)" }
}

/// Reads one `adapters/*.yaml` file into an `AdapterSpec`. Unknown keys, wrong types, templates that do
/// not parse and secrets written into the file all fail here, at start-up.
public enum AdapterSpecParser {
    public static func parse(file: String) throws -> AdapterSpec {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw AdapterSpecError(file: file, path: "", reason: "cannot read the file")
        }
        let stem = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        return try parse(yaml: text, file: file, expectedName: stem)
    }

    public static func parse(yaml: String, file: String, expectedName: String? = nil) throws -> AdapterSpec {
        do {
            let tree: Any?
            tree = try SafeYAML.load(yaml)
            return try spec(ConfigNode(value: tree ?? [String: Any](), path: "", env: nil).map(), file: file, expectedName: expectedName)
        } catch let e as ConfigError {
            throw AdapterSpecError(file: file, path: e.path, reason: e.reason)
        }
    }

    private static func spec(_ root: ConfigMap, file: String, expectedName: String?) throws -> AdapterSpec {
        try root.only(["name", "channel", "description", "settings", "rate_limit", "session_window_hours", "provider_dedup_seconds", "receipts", "lookup", "http", "smtp", "sandbox"])
        let name = try root.string("name")
        guard (1...64).contains(name.utf8.count), name.utf8.allSatisfy({ IdentityInput.isTokenByte($0) }) else {
            throw ConfigError(path: "name", reason: "must be 1 to 64 letters, digits, - or _")
        }
        if let expectedName, name != expectedName {
            throw ConfigError(path: "name", reason: "must match the file name (\(expectedName))")
        }
        let kinds = ["http", "smtp", "sandbox"].filter(root.has)
        guard kinds.count == 1 else { throw ConfigError(path: "", reason: "needs exactly one of http, smtp or sandbox") }

        var settings = [String: SettingSource]()
        if let s = try root.optionalMap("settings") {
            for key in s.keys {
                let raw = try s.string(key)
                settings[key] = raw.hasPrefix("env:") ? .env(try envName(raw, path: s.child(key))) : .text(raw)
            }
        }
        let kind: AdapterSpec.Kind
        switch kinds[0] {
        case "http": kind = .http(try http(try root.optionalMap("http")!, settings: settings))
        case "smtp": kind = .smtp(try smtp(try root.optionalMap("smtp")!, settings: settings))
        default: kind = .sandbox(try sandbox(try root.optionalMap("sandbox")!))
        }
        var rateLimit: RateLimitSpec?
        if let r = try root.optionalMap("rate_limit") {
            try r.only(["per_second", "burst", "scope"])
            let perSecond = try r.double("per_second", range: 0.001...1_000_000)
            let burst = try r.int("burst", default: 1, range: 1...1_000_000)
            rateLimit = RateLimitSpec(limit: RateLimit(perSecond: perSecond, burst: burst), scope: try r.choice("scope", default: .adapter))
        }
        let window = root.has("session_window_hours") ? try root.int("session_window_hours", default: 48, range: 1...720) : nil
        let dedup = root.has("provider_dedup_seconds") ? Int64(try root.int("provider_dedup_seconds", default: 0, range: 1...86_400)) * 1000 : nil
        var receipts: ReceiptSpec?
        if let r = try root.optionalMap("receipts") {
            try r.only(["format", "key"])
            let key = try r.string("key")
            guard settings[key] != nil else { throw ConfigError(path: r.child("key"), reason: "names setting \(key), which settings does not define") }
            receipts = ReceiptSpec(format: try r.choice("format"), keySetting: key)
        }
        var lookup: LookupSpec?
        if let l = try root.optionalMap("lookup") {
            guard case .http = kind else { throw ConfigError(path: "lookup", reason: "is for http adapters") }
            lookup = try self.lookup(l, settings: settings)
        }
        return AdapterSpec(
            name: name, file: file, channel: try root.choice("channel"), summary: try root.string("description", default: ""),
            settings: settings, rateLimit: rateLimit, sessionWindowHours: window, providerDedupMs: dedup, receipts: receipts, lookup: lookup, kind: kind)
    }

    private static func envName(_ raw: String, path: String) throws -> String {
        let name = String(raw.dropFirst(4))
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
            throw ConfigError(path: path, reason: "env: must name an environment variable (env:NAME)")
        }
        return name
    }

    // MARK: http

    private static func lookup(_ m: ConfigMap, settings: [String: SettingSource]) throws -> LookupSpec {
        let request = try http(m, settings: settings, more: ["list", "match", "provider_id", "created_at"])
        guard request.body == nil else { throw ConfigError(path: m.child("body"), reason: "a lookup is a query: no body") }
        var match = [(String, TextTemplate)]()
        if let fields = try m.optionalMap("match") {
            for key in fields.keys { match.append((key, try TextTemplate(try fields.string(key), path: fields.child(key)))) }
        }
        guard !match.isEmpty else { throw ConfigError(path: m.child("match"), reason: "needs the fields that identify the message (to, body...)") }
        return LookupSpec(
            request: request, list: try m.string("list"), match: match, providerId: try m.string("provider_id"), createdAt: try m.optionalString("created_at"))
    }

    /// An HTTP request part; `more`: keys of the enclosing section (a lookup's), where `response` is optional.
    private static func http(_ m: ConfigMap, settings: [String: SettingSource], more: [String]? = nil) throws -> HTTPPart {
        try m.only(Set(["method", "url", "query", "headers", "body", "auth", "timeout_ms", "response"] + (more ?? [])))
        let method = try m.string("method", default: "POST").uppercased()
        guard ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(method) else {
            throw ConfigError(path: m.child("method"), reason: "must be GET, POST, PUT, PATCH or DELETE")
        }
        let url = try TextTemplate(try m.string("url"), path: m.child("url"))
        guard url.source.hasPrefix("{{settings.") || url.source.hasPrefix("https://") || url.source.hasPrefix("http://") else {
            throw ConfigError(path: m.child("url"), reason: "must start with https://, http:// or a {{settings.…}} base URL")
        }
        var query = [(String, BodyTemplate)]()
        if let q = try m.optionalMap("query") {
            for key in q.keys { query.append((key, try BodyTemplate.parse(try q.node(key)))) }
        }
        var headers = [(String, TextTemplate)]()
        if let h = try m.optionalMap("headers") {
            for key in h.keys {
                guard !key.isEmpty, key.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") }) else {
                    throw ConfigError(path: h.child(key), reason: "not a valid header name")
                }
                guard key.lowercased() != "authorization" else {
                    throw ConfigError(path: h.child(key), reason: "set credentials with auth, not a header, so they stay out of the spec")
                }
                headers.append((key, try TextTemplate(try h.string(key), path: h.child(key))))
            }
        }
        var body: HTTPPart.Body?
        if let b = try m.optionalMap("body") {
            try b.only(["format", "fields"])
            body = HTTPPart.Body(format: try b.choice("format", default: .json), fields: try BodyTemplate.parse(try b.node("fields")))
        }
        if body != nil && method == "GET" { throw ConfigError(path: m.child("body"), reason: "a GET request has no body") }
        let auth = try self.auth(try m.optionalMap("auth"), settings: settings)
        return HTTPPart(
            method: method, url: url, query: query, headers: headers, body: body, auth: auth,
            timeoutMs: try m.int("timeout_ms", default: 10_000, range: 100...120_000),
            response: more != nil && !m.has("response") ? ResponseSpec() : try response(try m.node("response").map()))
    }

    private static func auth(_ a: ConfigMap?, settings: [String: SettingSource]) throws -> HTTPPart.Auth {
        guard let a else { return .none }
        let type = try a.string("type")
        let auth: HTTPPart.Auth
        switch type {
        case "none":
            try a.only(["type"])
            auth = .none
        case "bearer":
            try a.only(["type", "token"])
            auth = .bearer(token: try a.string("token"))
        case "basic":
            try a.only(["type", "username", "password"])
            auth = .basic(username: try a.string("username"), password: try a.string("password"))
        case "query-token":
            try a.only(["type", "parameter", "token"])
            auth = .queryToken(parameter: try a.string("parameter"), token: try a.string("token"))
        case "wechat-access-token":
            try a.only(["type"])
            auth = .wechatAccessToken
        case "douyin-access-token":
            try a.only(["type"])
            auth = .douyinAccessToken
        case "hmac-sha1-sorted-params":
            try a.only(["type", "key_id", "secret"])
            auth = .hmacSHA1SortedParams(keyId: try a.string("key_id"), secret: try a.string("secret"))
        default:
            throw ConfigError(
                path: a.child("type"),
                reason: "must be none, bearer, basic, query-token, wechat-access-token, douyin-access-token or hmac-sha1-sorted-params, got \"\(type)\"")
        }
        // Credentials are names of settings, and those settings must come from the environment.
        for name in auth.secretSettings {
            guard let source = settings[name] else {
                throw ConfigError(path: a.path, reason: "names setting \(name), which settings does not define")
            }
            if case .text(let t) = source, !t.hasPrefix("${") {
                throw ConfigError(path: "settings.\(name)", reason: "is a credential: use env:NAME, never a value in the spec")
            }
        }
        return auth
    }

    private static func response(_ r: ConfigMap) throws -> ResponseSpec {
        try r.only(["success", "provider_id", "error_code", "error_message", "errors", "otherwise"])
        var spec = ResponseSpec()
        if let s = try r.optionalMap("success") {
            try s.only(["status", "field", "equals", "missing_ok"])
            if let statuses = try s.scalarList("status") { spec.successStatus = try statuses.map { try status($0, path: s.child("status")) } }
            spec.successField = try s.optionalString("field")
            spec.successValues = try s.scalarList("equals") ?? []
            if spec.successField != nil && spec.successValues.isEmpty {
                throw ConfigError(path: s.child("equals"), reason: "is required with field")
            }
            spec.successWhenMissing = try s.bool("missing_ok", default: false)
        }
        spec.providerId = try fieldRef(r, "provider_id")
        spec.errorCode = try fieldRef(r, "error_code")
        spec.errorMessage = try fieldRef(r, "error_message")
        for node in try r.optionalList("errors") ?? [] {
            let e = try node.map()
            try e.only(["status", "codes", "class"])
            let statuses = try e.scalarList("status")?.map { try status($0, path: e.child("status")) }
            let codes = try e.scalarList("codes")
            guard statuses != nil || codes != nil else { throw ConfigError(path: e.path, reason: "needs status, codes or both") }
            if codes != nil && spec.errorCode == nil {
                throw ConfigError(path: e.child("codes"), reason: "needs response.error_code to say where the code is")
            }
            spec.errors.append(ErrorRule(status: statuses, codes: codes, errorClass: try e.choice("class")))
        }
        spec.otherwise = try r.choice("otherwise", default: .permanent)
        return spec
    }

    private static func status(_ s: String, path: String) throws -> StatusPattern {
        if s.count == 3, s.hasSuffix("xx"), let h = Int(s.prefix(1)), (1...5).contains(h) { return .range(h) }
        guard let code = Int(s), (100...599).contains(code) else { throw ConfigError(path: path, reason: "must be a status (200) or a class (5xx), got \"\(s)\"") }
        return .exact(code)
    }

    private static func fieldRef(_ r: ConfigMap, _ key: String) throws -> FieldRef? {
        guard let m = try r.optionalMap(key) else { return nil }
        try m.only(["field", "header"])
        if let f = try m.optionalString("field") { return .json(f) }
        if let h = try m.optionalString("header") { return .header(h) }
        throw ConfigError(path: m.path, reason: "needs field (a JSON path) or header")
    }

    // MARK: smtp

    private static func smtp(_ m: ConfigMap, settings: [String: SettingSource]) throws -> SMTPPart {
        try m.only([
            "server", "security", "username", "password", "from", "from_name", "reply_to", "subject", "text", "html",
            "list_unsubscribe", "timeout_ms",
        ])
        func template(_ key: String) throws -> TextTemplate? {
            try m.optionalString(key).map { try TextTemplate($0, path: m.child(key)) }
        }
        var unsubscribeURL: TextTemplate?
        var unsubscribeMailto: TextTemplate?
        if let u = try m.optionalMap("list_unsubscribe") {
            try u.only(["url", "mailto"])
            unsubscribeURL = try TextTemplate(try u.string("url"), path: u.child("url"))
            unsubscribeMailto = try u.optionalString("mailto").map { try TextTemplate($0, path: u.child("mailto")) }
        }
        let username = try m.optionalString("username")
        let password = try m.optionalString("password")
        for (key, name) in [("username", username), ("password", password)] {
            guard let name else { continue }
            guard settings[name] != nil else { throw ConfigError(path: m.child(key), reason: "names setting \(name), which settings does not define") }
        }
        if let password, case .text(let t) = settings[password], !t.hasPrefix("${") {
            throw ConfigError(path: "settings.\(password)", reason: "is a credential: use env:NAME, never a value in the spec")
        }
        return SMTPPart(
            server: try TextTemplate(try m.string("server"), path: m.child("server")),
            security: try TextTemplate(try m.string("security", default: "starttls"), path: m.child("security")),
            username: username, password: password,
            from: try TextTemplate(try m.string("from"), path: m.child("from")),
            fromName: try template("from_name"), replyTo: try template("reply_to"),
            subject: try TextTemplate(try m.string("subject"), path: m.child("subject")),
            text: try TextTemplate(try m.string("text"), path: m.child("text")),
            html: try template("html"), unsubscribeURL: unsubscribeURL, unsubscribeMailto: unsubscribeMailto,
            timeoutMs: try m.int("timeout_ms", default: 30_000, range: 100...300_000))
    }

    // MARK: sandbox

    private static func sandbox(_ m: ConfigMap) throws -> SandboxPart {
        try m.only(["renders", "settings"])
        var overrides = [String: String]()
        if let s = try m.optionalMap("settings") {
            for key in s.keys { overrides[key] = try s.string(key) }
        }
        return SandboxPart(renders: try m.string("renders"), settings: overrides)
    }
}
