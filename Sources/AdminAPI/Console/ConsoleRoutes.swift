import GatewayCore
import GatewayCrypto
import HTTPTypes
import Hummingbird
import Ingress
import Store

/// `/console`: the marketers' web console, served by the admin listener. Work in progress (issue 17):
/// sign-in with the operator accounts (a double-submit CSRF cookie on the form), sign-out, the
/// dashboard placeholder and the static assets. Pages without a session redirect to the sign-in page.
/// The routes are `public` in the route table because each checks its own proof: the session cookie.
struct ConsoleRoutes {
    let operators: OperatorStore
    let sessionMaxHours: Int
    let trustedProxies: [String]
    let secureCookies: Bool
    let clock: @Sendable () -> Int64

    static let loginCSRFCookie = "scrm_login_csrf"

    func register<Context: RequestContext>(on routes: DeclaredRoutes<Context>) {
        routes.get("/console/assets/:file", .public) { _, context in
            guard let asset = ConsolePages.assets[context.parameters.get("file") ?? ""] else { throw APIError.notFound("asset") }
            var headers: HTTPFields = [.contentType: asset.type, .cacheControl: "public, max-age=3600"]
            headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: asset.bytes)))
        }
        routes.get("/console/login", .public) { request, _ in loginPage(request, error: nil) }
        routes.post("/console/login", .public) { request, context in try await storage { try await login(request, context) } }
        routes.post("/console/logout", .public) { request, _ in try await storage { try await logout(request) } }
        routes.get("/console", .public) { request, _ in
            try await storage {
                guard let session = try await session(request) else { return ConsolePages.redirect("/console/login") }
                return ConsolePages.page("dashboard", lang: lang(request), context: frame(session))
            }
        }
    }

    func lang(_ request: Request) -> String {
        ConsoleStrings.language(acceptLanguage: request.headers[.acceptLanguage], cookie: request.cookies["lang"]?.value)
    }

    func session(_ request: Request) async throws -> OperatorStore.Session? {
        guard let token = request.cookies[OperatorSession.cookie]?.value else { return nil }
        return try await operators.session(token: token, nowMs: clock())
    }

    /// What every signed-in page shows in its frame.
    func frame(_ s: OperatorStore.Session) -> [String: Any] { ["operator": s.operatorName, "role": s.role.rawValue, "csrf": s.csrf] }

    func cookie(_ name: String, _ value: String, maxAge: Int, path: String = "/") -> String {
        "\(name)=\(value); Path=\(path); Max-Age=\(maxAge); HttpOnly; SameSite=Strict" + (secureCookies ? "; Secure" : "")
    }

    func loginPage(_ request: Request, error: String?, status: HTTPResponse.Status = .ok) -> Response {
        let csrf = SecureRandom.alphanumeric(32)
        let l = lang(request)
        var response = ConsolePages.page(
            "login", lang: l, context: ["csrf": csrf, "error": error.map { ConsoleStrings.table[l]?[$0] ?? $0 } as Any], status: status)
        response.headers.append(HTTPField(name: .setCookie, value: cookie(Self.loginCSRFCookie, csrf, maxAge: 3600, path: "/console")))
        return response
    }

    func login(_ request: Request, _ context: some RequestContext) async throws -> Response {
        let body = try await request.body.collect(upTo: 4096)
        let form = Dictionary(FormEncoding.pairs(String(buffer: body)).map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
        guard let sent = form["csrf"], let expected = request.cookies[Self.loginCSRFCookie]?.value,
            ConstantTime.equals(Array(sent.utf8), Array(expected.utf8))
        else { return loginPage(request, error: "expired", status: .forbidden) }
        let address = ClientAddress.of(request, context, trustedProxies: trustedProxies)
        switch try await operators.login(name: form["name"] ?? "", password: form["password"] ?? "", address: address, nowMs: clock()) {
        case .signedIn(let token, _):
            return ConsolePages.redirect(
                "/console", cookies: [cookie(OperatorSession.cookie, token, maxAge: sessionMaxHours * 3600), cookie(Self.loginCSRFCookie, "", maxAge: 0, path: "/console")])
        case .invalid: return loginPage(request, error: "invalid", status: .unauthorized)
        case .locked, .rateLimited: return loginPage(request, error: "locked", status: .tooManyRequests)
        }
    }

    func logout(_ request: Request) async throws -> Response {
        let body = try await request.body.collect(upTo: 4096)
        let form = Dictionary(FormEncoding.pairs(String(buffer: body)).map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
        if let token = request.cookies[OperatorSession.cookie]?.value, let s = try await operators.session(token: token, nowMs: clock()),
            let sent = form["csrf"], ConstantTime.equals(Array(sent.utf8), Array(s.csrf.utf8))
        {
            try await operators.logout(token: token)
        }
        return ConsolePages.redirect("/console/login", cookies: [cookie(OperatorSession.cookie, "", maxAge: 0)])
    }
}
