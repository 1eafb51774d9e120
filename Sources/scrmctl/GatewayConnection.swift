import ArgumentParser
import Foundation
import HTTPTransport
import GatewayCore

/// Where the gateway is and how to authenticate, first found: flags; SCRM_URL / SCRM_ADMIN_TOKEN; a
/// config file ($SCRMCTL_CONFIG, else ~/.config/scrmctl.yaml) with `url:` and `token:`; else
/// http://127.0.0.1:$SCRM_PORT and the token scripts/run keeps in data/admin-token.
struct GatewayOptions: ParsableArguments {
    @Option(help: "Gateway base URL (default: $SCRM_URL or http://127.0.0.1:$SCRM_PORT, port 8080).")
    var url: String?

    @Option(help: "API key or admin token, or file:/path holding one (default: $SCRM_ADMIN_TOKEN, else ./data/admin-token).")
    var token: String?

    var baseURL: String {
        let env = ProcessInfo.processInfo.environment
        let u = url ?? env["SCRM_URL"] ?? Self.file["url"] ?? "http://127.0.0.1:\(env["SCRM_PORT"] ?? "8080")"
        return u.hasSuffix("/") ? String(u.dropLast()) : u
    }

    /// An admin token or API key; `file:/path` reads it from that file.
    var adminToken: String? {
        if let token { return try? SecretFiles.read(token, path: "--token") }
        if let t = ProcessInfo.processInfo.environment["SCRM_ADMIN_TOKEN"], !t.isEmpty { return try? SecretFiles.read(t, path: "SCRM_ADMIN_TOKEN") }
        if let t = Self.file["token"], !t.isEmpty { return try? SecretFiles.read(t, path: "token") }
        return (try? String(contentsOfFile: "data/admin-token", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The config file's url and token, if there is one.
    static var file: [String: String] {
        let env = ProcessInfo.processInfo.environment
        let path = env["SCRMCTL_CONFIG"] ?? ((env["HOME"] ?? "") + "/.config/scrmctl.yaml")
        guard let text = try? String(contentsOfFile: path, encoding: .utf8), let map = (try? SafeYAML.load(text)) as? [String: Any] else { return [:] }
        return map.compactMapValues { $0 as? String }
    }

    /// Calls the admin API and prints the JSON answer; a non-2xx answer fails the command.
    func admin(_ method: String, _ path: String, json: String? = nil) async throws -> [String: Any] {
        try await admin(method, path, body: Array((json ?? "").utf8), contentType: json == nil ? nil : "application/json")
    }

    /// An admin call with a body of any type (an import file); the answer's JSON object.
    func admin(_ method: String, _ path: String, body: [UInt8], contentType: String?) async throws -> [String: Any] {
        var headers = [("Accept", "application/json")]
        if let t = adminToken { headers.append(("Authorization", "Bearer \(t)")) }
        if let contentType { headers.append(("Content-Type", contentType)) }
        let response = try await send(HTTPRequest(method: method, url: baseURL + path, headers: headers, body: body))
        let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:]
        guard (200..<300).contains(response.status) else {
            let error = object["error"] as? [String: Any]
            throw ValidationError("HTTP \(response.status): \(error?["message"] as? String ?? response.text)")
        }
        return object
    }

    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        do { return try await HTTPTransport.shared.send(request) } catch {
            throw ValidationError("cannot reach the gateway at \(baseURL): \(error). Is scripts/run running?")
        }
    }
}

func printJSON(_ object: Any) {
    if let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) {
        print(String(decoding: data, as: UTF8.self))
    }
}

/// Percent-encodes a query value.
func queryValue(_ s: String) -> String {
    s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_.~"))) ?? s
}
