import GatewayCore
import HTTPTransport

/// One call to the WeChat Official Account API with the account's shared access token: JSON in,
/// JSON out, `errcode` checked, and one retry with a fresh token when WeChat refuses the token
/// (40001, 40014, 42001), invalidating it only if it is still the cached one.
public struct WeChatAPIClient: Sendable {
    public struct APIError: Error, Equatable, CustomStringConvertible {
        public let code: String
        public let message: String
        public var description: String { "WeChat API error \(code): \(message)" }

        public init(code: String, message: String) {
            self.code = code
            self.message = message
        }

        /// 45009 and friends: the API's daily quota is spent (45028: no mass-send quota left).
        public var isQuota: Bool { ["45009", "45011", "45028", "45047"].contains(code) }
    }

    let transport: HTTPTransport
    let tokens: AccessTokenManager
    let baseURL: String

    public init(transport: HTTPTransport = .shared, tokens: AccessTokenManager, baseURL: String) {
        self.transport = transport
        self.tokens = tokens
        self.baseURL = baseURL
    }

    public func call(account: String, method: String, path: String, query: String = "", body: JSONValue?) async throws -> JSONValue {
        try await call(
            account: account, method: method, path: path, query: query, contentType: body == nil ? nil : "application/json",
            body: body.map { Array($0.text.utf8) } ?? [])
    }

    /// A call with a body of any type (`media/upload` takes multipart/form-data).
    public func call(
        account: String, method: String, path: String, query: String = "", contentType: String?, body: [UInt8], timeoutMs: Int = 10_000
    ) async throws -> JSONValue {
        var token = try await tokens.token(for: account)
        for attempt in 0..<2 {
            let request = HTTPRequest(
                method: method, url: "\(baseURL)\(path)?access_token=\(ResolvedAdapter.percentEncode(token))\(query)",
                headers: contentType.map { [("Content-Type", $0)] } ?? [], body: body, timeoutMs: timeoutMs)
            let response = try await transport.send(request)
            guard let json = JSONValue.parse(response.body) else { throw APIError(code: "http \(response.status)", message: "not JSON") }
            let code = json.lookup("errcode")?.scalarText ?? "0"
            if code == "0" { return json }
            if ["40001", "40014", "42001"].contains(code), attempt == 0 {
                await tokens.invalidate(account: account, failedToken: token)
                token = try await tokens.token(for: account)
                continue
            }
            throw APIError(code: code, message: json.lookup("errmsg")?.scalarText ?? "")
        }
        throw APIError(code: "token", message: "access token refused twice")
    }
}
