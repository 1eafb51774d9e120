import ArgumentParser
import Foundation
import HTTPTransport

/// Where the gateway is and how to authenticate: flags, else SCRM_URL / SCRM_ADMIN_TOKEN, else
/// http://127.0.0.1:$SCRM_PORT and the token scripts/run keeps in data/admin-token.
struct GatewayOptions: ParsableArguments {
    @Option(help: "Gateway base URL (default: $SCRM_URL or http://127.0.0.1:$SCRM_PORT, port 8080).")
    var url: String?

    @Option(help: "Admin token (default: $SCRM_ADMIN_TOKEN, else ./data/admin-token).")
    var token: String?

    var baseURL: String {
        let env = ProcessInfo.processInfo.environment
        let u = url ?? env["SCRM_URL"] ?? "http://127.0.0.1:\(env["SCRM_PORT"] ?? "8080")"
        return u.hasSuffix("/") ? String(u.dropLast()) : u
    }

    var adminToken: String? {
        if let token { return token }
        if let t = ProcessInfo.processInfo.environment["SCRM_ADMIN_TOKEN"], !t.isEmpty { return t }
        return (try? String(contentsOfFile: "data/admin-token", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Calls the admin API and prints the JSON answer; a non-2xx answer fails the command.
    func admin(_ method: String, _ path: String, json: String? = nil) async throws -> [String: Any] {
        var headers = [("Accept", "application/json")]
        if let t = adminToken { headers.append(("Authorization", "Bearer \(t)")) }
        if json != nil { headers.append(("Content-Type", "application/json")) }
        let response = try await send(HTTPRequest(method: method, url: baseURL + path, headers: headers, body: Array((json ?? "").utf8)))
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
