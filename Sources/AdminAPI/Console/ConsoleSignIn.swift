import Foundation
import GatewayCore
import GatewayCrypto
import HTTPTypes
import Hummingbird
import Ingress
import Store

/// Sign-in and sign-out with the operator accounts: a double-submit CSRF cookie on the sign-in form,
/// the session's own token on sign-out, and the language and time-zone choice.
extension ConsoleRoutes {
    func registerSignIn(on routes: DeclaredRoutes<Context>) {
        routes.get("/console/login", .public) { request, _ in loginPage(request, error: nil) }
        routes.post("/console/login", .public) { request, context in try await storage { try await login(request, context) } }
        routes.post("/console/logout", .public) { request, _ in try await storage { try await logout(request) } }
        routes.post("/console/prefs", .public) { request, _ in try await storage { try await preferences(request) } }
    }

    func loginPage(_ request: Request, error: String?, status: HTTPResponse.Status = .ok) -> Response {
        let csrf = SecureRandom.alphanumeric(32)
        let l = lang(request)
        var response = ConsolePages.page(
            "login", lang: l, context: ["csrf": csrf, "error": error.map { ConsoleStrings.text($0, l) } as Any], status: status)
        response.headers.append(HTTPField(name: .setCookie, value: cookie(Self.loginCSRFCookie, csrf, maxAge: 3600, path: "/console")))
        return response
    }

    func login(_ request: Request, _ context: Context) async throws -> Response {
        let form = try await Self.form(request, maxBytes: 4096)
        guard let sent = form["csrf"], let expected = request.cookies[Self.loginCSRFCookie]?.value,
            ConstantTime.equals(Array(sent.utf8), Array(expected.utf8))
        else { return loginPage(request, error: "expired", status: .forbidden) }
        let address = ClientAddress.of(request, context, trustedProxies: config.server.trustedProxies)
        switch try await operators.login(name: form["name"] ?? "", password: form["password"] ?? "", address: address, nowMs: clock()) {
        case .signedIn(let token, _):
            return ConsolePages.redirect(
                "/console",
                cookies: [
                    cookie(OperatorSession.cookie, token, maxAge: config.admin.sessionMaxHours * 3600), cookie(Self.loginCSRFCookie, "", maxAge: 0, path: "/console"),
                ])
        case .invalid: return loginPage(request, error: "invalid", status: .unauthorized)
        case .locked, .rateLimited: return loginPage(request, error: "locked", status: .tooManyRequests)
        }
    }

    func logout(_ request: Request) async throws -> Response {
        let form = try await Self.form(request, maxBytes: 4096)
        if let token = request.cookies[OperatorSession.cookie]?.value, let s = try await operators.session(token: token, nowMs: clock()),
            let sent = form["csrf"], ConstantTime.equals(Array(sent.utf8), Array(s.csrf.utf8))
        {
            try await operators.logout(token: token)
        }
        return ConsolePages.redirect("/console/login", cookies: [cookie(OperatorSession.cookie, "", maxAge: 0)])
    }

    /// The language and time zone the operator chose (cookies for a year), back to the page they were on.
    func preferences(_ request: Request) async throws -> Response {
        let form = try await Self.form(request, maxBytes: 4096)
        guard let v = try await visitor(request) else { return ConsolePages.redirect("/console/login") }
        guard let sent = form["csrf"], ConstantTime.equals(Array(sent.utf8), Array(v.session.csrf.utf8)) else {
            return ConsolePages.problem(status: .forbidden, message: v.t("expired"), lang: v.lang)
        }
        var cookies = [String]()
        if let l = form["lang"], ConsoleStrings.languages.contains(l) { cookies.append(cookie("lang", l, maxAge: 31_536_000, httpOnly: false)) }
        if let z = form["tz"], TimeZone(identifier: z) != nil {
            cookies.append(cookie("tz", z.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "UTC", maxAge: 31_536_000, httpOnly: false))
        }
        return ConsolePages.redirect(ConsolePages.safeBack(form["_back"]), cookies: cookies)
    }
}
