import Foundation
import GatewayCore
import HTTPAPI
import HTTPTypes
import Hummingbird
import Ingress
import RedisClient

/// `POST /console/act`: every console form that changes something. The form names the API call
/// (`_method`, `_path`), carries the session's CSRF token, and its other fields become the call's JSON
/// body (`ConsoleFormBody`) or, with `_raw`, one field is sent as it is (`_type`: YAML, CSV). The API
/// checks the token, the role and the input, and audits the call; the console only reports its answer:
/// a redirect to `_next` (or back to `_back`) with a notice, or, for the page's script (`Accept:
/// application/json`), `{"ok", "location"}` or the API's error, so a long form keeps what was typed.
extension ConsoleRoutes {
    static var rawTypes: Set<String> { ["application/json", "application/yaml", "text/csv"] }

    func registerActions(on routes: DeclaredRoutes<Context>) {
        routes.post("/console/act", .public) { request, context in try await act(request, context) }
    }

    struct ActAnswer: Encodable {
        let ok: Bool
        let location: String?
        let error: ErrorBody?
        struct ErrorBody: Encodable {
            let code: String
            let message: String
        }
    }

    func act(_ request: Request, _ context: Context) async throws -> Response {
        let wantsJSON = request.headers[.accept]?.contains("application/json") == true
        let text = String(buffer: try await request.body.collect(upTo: config.server.maxBodyBytes))
        let pairs = FormEncoding.pairs(text)
        let form = FormEncoding.fields(pairs)
        let back = ConsolePages.safeBack(form["_back"])
        func answer(_ ok: Bool, _ message: String, code: String, status: HTTPResponse.Status, location: String) throws -> Response {
            let flash = cookie(ConsoleFlash.cookie, ConsoleFlash(ok: ok, text: message).cookieValue, maxAge: 120, path: "/console")
            if wantsJSON {
                // The script shows an error itself, beside the form; a success is shown by the page it goes to.
                var response = try JSONResponse.encoded(
                    ActAnswer(ok: ok, location: ok ? location : nil, error: ok ? nil : .init(code: code, message: message)), status: ok ? .ok : status)
                if ok { response.headers.append(HTTPField(name: .setCookie, value: flash)) }
                return response
            }
            return ConsolePages.redirect(location, cookies: [flash])
        }
        let lang = self.lang(request)
        guard request.cookies[OperatorSession.cookie] != nil else {
            return wantsJSON ? try answer(false, ConsoleStrings.text("signedOut", lang), code: "session_expired", status: .unauthorized, location: back)
                : ConsolePages.redirect("/console/login")
        }
        guard let method = form["_method"].flatMap({ HTTPRequest.Method($0) }), [.post, .put, .patch, .delete].contains(method),
            let path = form["_path"].map({ Self.fill($0, fields: form) }), Self.isAPIPath(path)
        else { return try answer(false, ConsoleStrings.text("badForm", lang), code: "bad_form", status: .badRequest, location: back) }

        let body: [UInt8]
        let contentType: String
        if let raw = form["_raw"] {
            guard let type = form["_type"], Self.rawTypes.contains(type) else {
                return try answer(false, ConsoleStrings.text("badForm", lang), code: "bad_form", status: .badRequest, location: back)
            }
            body = Array((form[raw] ?? "").utf8)
            contentType = type
        } else {
            do { body = Array(try ConsoleFormBody.json(pairs, timeZone: zone(request)).text.utf8) } catch let e as ConsoleFormBody.Invalid {
                return try answer(false, e.message, code: "invalid_field", status: .badRequest, location: back)
            }
            contentType = "application/json"
        }
        let result: ConsoleAPI<Context>.Answer
        do {
            result = try await api.call(method, path, body: body, contentType: contentType, csrf: form["csrf"] ?? "", as: request, context: context)
        } catch is RedisError {
            return try answer(false, ConsoleStrings.text("unavailable", lang), code: "unavailable", status: .serviceUnavailable, location: back)
        }
        guard result.ok else {
            if result.status == .unauthorized, !wantsJSON { return ConsolePages.redirect("/console/login") }
            return try answer(false, result.errorMessage ?? "", code: result.errorCode ?? "error", status: result.status, location: back)
        }
        let next = form["_next"].map { Self.fill($0, from: result.json) }.map { ConsolePages.safeBack($0) } ?? back
        var notice = ConsoleStrings.text(form["_ok"] ?? "done", lang)
        // `_show`: a field of the answer the operator must see once (a new API key's secret).
        if let field = form["_show"], let value = result.json.lookup(field)?.scalarText { notice += " " + value }
        return try answer(true, notice, code: "", status: .ok, location: next)
    }

    static func isAPIPath(_ path: String) -> Bool {
        path.hasPrefix("/api/v1/") && !path.contains("..") && !path.contains("//") && !path.contains("#") && !path.contains("\r") && !path.contains("\n")
    }

    /// `/api/v1/tags/{_tag}/customers` with `{_tag}` from the form's own fields (path-escaped).
    static func fill(_ template: String, fields: [String: String]) -> String {
        fill(template, from: .object(fields.filter { $0.key.hasPrefix("_") }.mapValues { .string($0.trimmingCharacters(in: .whitespaces)) }))
    }

    /// `/console/campaigns/{id}` with `{id}` from the API's answer (path-escaped).
    static func fill(_ template: String, from json: JSONValue) -> String {
        var out = template
        while let open = out.range(of: "{"), let close = out.range(of: "}", range: open.upperBound..<out.endIndex) {
            let key = String(out[open.upperBound..<close.lowerBound])
            let value = json.lookup(key)?.scalarText ?? ""
            out.replaceSubrange(open.lowerBound..<close.upperBound, with: value.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? "")
        }
        return out
    }
}

/// A form's fields as a JSON body. A field is named `path[:type]`: the path is dotted for nested
/// objects (`content.sms.text`); `list[]` adds an item and `list[2]` sets the third. The type is `str`
/// (the default), `int`, `num`, `bool`, `list` (one item per line or comma), `json`, or `local` (a
/// `datetime-local` value in the operator's zone, sent as ISO 8601 with its offset). Empty fields are
/// left out, so an optional input left blank is not sent. A part of the form can be switched off:
/// `_gates` names the parts (`channels[1],variants[1]`) and each ticked `_on` checkbox turns one on;
/// the fields of a part left off are not sent, and the lists close up. Names starting with `_`, and
/// `csrf`, are the console's own.
enum ConsoleFormBody {
    struct Invalid: Error {
        let message: String
    }

    static let types: Set<String> = ["str", "int", "num", "bool", "list", "json", "yaml", "local"]

    static func json(_ pairs: [(name: String, value: String)], timeZone: TimeZone = TimeZone(identifier: "UTC")!) throws -> JSONValue {
        let gates = pairs.filter { $0.name == "_gates" }.flatMap { $0.value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        let on = Set(pairs.filter { $0.name == "_on" }.map(\.value))
        let off = gates.filter { !on.contains($0) }
        var root = JSONValue.object([:])
        for (name, raw) in pairs where !name.hasPrefix("_") && name != "csrf" {
            var (path, type) = (name, "str")
            if let colon = name.lastIndex(of: ":"), types.contains(String(name[name.index(after: colon)...])) {
                (path, type) = (String(name[..<colon]), String(name[name.index(after: colon)...]))
            }
            if off.contains(where: { path == $0 || path.hasPrefix($0 + ".") }) { continue }
            let value = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !value.isEmpty || type == "bool" else { continue }
            let typed: JSONValue
            switch type {
            case "int":
                guard let i = Int64(value) else { throw Invalid(message: "\(path): a whole number, not \(value)") }
                typed = .int(i)
            case "num":
                guard let d = Double(value), d.isFinite else { throw Invalid(message: "\(path): a number, not \(value)") }
                typed = .double(d)
            case "bool": typed = .bool(["true", "on", "1", "yes"].contains(value.lowercased()))
            case "list":
                typed = .array(value.split(whereSeparator: { $0 == "," || $0 == "\n" }).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
                    .filter { !$0.isEmpty }.map(JSONValue.string))
            case "json":
                guard let v = JSONValue.parse(Array(value.utf8)) else { throw Invalid(message: "\(path): not JSON") }
                typed = v
            case "yaml":
                do { typed = try SafeYAML.json(raw) } catch let e as ConfigError { throw Invalid(message: "YAML: \(e.reason)") }
            case "local":
                guard let iso = ConsoleFormat.isoFromLocal(value, timeZone) else { throw Invalid(message: "\(path): a date and time, not \(value)") }
                typed = .string(iso)
            default: typed = .string(raw)
            }
            if path == "." {
                // `.:yaml`: the whole body.
                guard case .object(let whole) = typed else { throw Invalid(message: "the document must be a mapping") }
                for (k, v) in whole { root = set(root, [k][...], v) }
            } else {
                root = set(root, path.split(separator: ".").map(String.init)[...], typed)
            }
        }
        return closeUp(root)
    }

    /// Lists without the holes that parts switched off leave.
    static func closeUp(_ v: JSONValue) -> JSONValue {
        switch v {
        case .array(let a): .array(a.filter { $0 != .null }.map(closeUp))
        case .object(let o): .object(o.mapValues(closeUp))
        default: v
        }
    }

    static func set(_ node: JSONValue, _ path: ArraySlice<String>, _ value: JSONValue) -> JSONValue {
        guard let head = path.first else { return value }
        var object: [String: JSONValue] = if case .object(let o) = node { o } else { [:] }
        if let open = head.firstIndex(of: "["), head.hasSuffix("]") {
            // `key[]` adds an item; `key[2]` sets (or fills in) the third.
            let key = String(head[..<open])
            let index = Int(head[head.index(after: open)..<head.index(before: head.endIndex)])
            var list: [JSONValue] = if case .array(let a)? = object[key] { a } else { [] }
            let at = min(index ?? list.count, 1000)
            while list.count <= at { list.append(.null) }
            list[at] = set(list[at] == .null ? .object([:]) : list[at], path.dropFirst(), value)
            object[key] = .array(list)
        } else {
            object[head] = set(object[head] ?? .object([:]), path.dropFirst(), value)
        }
        return .object(object)
    }
}
