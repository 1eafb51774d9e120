import Foundation
import GatewayCore
import GatewayCrypto
import HTTPAPI
import HTTPTypes
import Hummingbird
import Ingress
import RedisClient
import Store

/// `/console`: the marketers' web console, served by the admin listener from the same binary. Pages
/// are rendered on the server from the API's own answers (`ConsoleAPI`); forms go to `/console/act`,
/// which hands them to the API as the operator. The routes are `public` in the route table because
/// each checks its own proof, the session cookie; without one, a page redirects to the sign-in page.
struct ConsoleRoutes<Context: RequestContext> {
    let operators: OperatorStore
    let api: ConsoleAPI<Context>
    let config: GatewayConfig
    let clock: @Sendable () -> Int64

    static var loginCSRFCookie: String { "scrm_login_csrf" }
    var secureCookies: Bool { config.outbound.publicURL.hasPrefix("https://") }

    /// A rendered body: a template of `templates/` and what it shows.
    struct View {
        var template: String
        var context: [String: Any]
        var status: HTTPResponse.Status = .ok
        /// Instead of a page, go there (a merged customer's survivor).
        var redirect: String? = nil

        init(template: String, context: [String: Any], status: HTTPResponse.Status = .ok) {
            self.template = template
            self.context = context
            self.status = status
        }

        static func redirect(_ to: String) -> View {
            var view = View(template: "problem", context: [:])
            view.redirect = to
            return view
        }
    }

    func register(on routes: DeclaredRoutes<Context>) {
        routes.get("/console/assets/:file", .public) { _, context in
            guard let asset = ConsolePages.assets[context.parameters.get("file") ?? ""] else { throw APIError.notFound("asset") }
            var headers: HTTPFields = [.contentType: asset.type, .cacheControl: "public, max-age=3600"]
            headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: asset.bytes)))
        }
        registerSignIn(on: routes)
        registerActions(on: routes)
        registerCustomers(on: routes)
        registerAudiences(on: routes)
        registerCampaigns(on: routes)
        registerJourneys(on: routes)
        registerOperations(on: routes)
        registerImports(on: routes)
        registerChannels(on: routes)
        registerDashboard(on: routes)
    }

    /// A signed-in page: `build` reads the API as the visitor and names a template. Without a session
    /// the answer is the sign-in page; an API refusal shows as the page's error, with the API's status.
    func page(
        _ routes: DeclaredRoutes<Context>, _ path: String, method: HTTPRequest.Method = .get, section: String,
        _ build: @escaping @Sendable (Request, Context, ConsoleVisitor) async throws -> View
    ) {
        routes.on(path, method: method, .public) { request, context in
            let started = ContinuousClock.now
            let visitor: ConsoleVisitor
            do {
                guard let v = try await self.visitor(request) else { return ConsolePages.redirect("/console/login") }
                visitor = v
            } catch is RedisError {
                return ConsolePages.problem(status: .serviceUnavailable, message: ConsoleStrings.text("unavailable", lang(request)), lang: lang(request))
            }
            var view: View
            do {
                view = try await build(request, context, visitor)
            } catch let failed as ConsoleAPI<Context>.Failed {
                if failed.answer.status == .unauthorized { return ConsolePages.redirect("/console/login") }
                view = View(template: "problem", context: ["message": failed.answer.errorMessage ?? ""], status: failed.answer.status)
            }
            if let to = view.redirect { return ConsolePages.redirect(to) }
            var full = visitor.frame(section: section)
            for (k, v) in view.context { full[k] = v }
            var response = ConsolePages.page(view.template, lang: visitor.lang, context: full, status: view.status)
            if visitor.flash != nil { response.headers.append(HTTPField(name: .setCookie, value: cookie(ConsoleFlash.cookie, "", maxAge: 0, path: "/console"))) }
            // The page's time on the server, API calls and rendering included (browsers' devtools and scripts/bench console read it).
            let elapsed = (ContinuousClock.now - started).components
            let ms = Double(elapsed.seconds) * 1000 + Double(elapsed.attoseconds) / 1e15
            response.headers[HTTPField.Name("Server-Timing")!] = String(format: "page;dur=%.2f", ms)
            return response
        }
    }

    func lang(_ request: Request) -> String {
        ConsoleStrings.language(acceptLanguage: request.headers[.acceptLanguage], cookie: request.cookies["lang"]?.value)
    }

    /// The operator's time zone: their choice (the `tz` cookie), else UTC.
    func zone(_ request: Request) -> TimeZone {
        request.cookies["tz"].flatMap { TimeZone(identifier: $0.value.removingPercentEncoding ?? $0.value) } ?? TimeZone(identifier: "UTC")!
    }

    func visitor(_ request: Request) async throws -> ConsoleVisitor? {
        guard let token = request.cookies[OperatorSession.cookie]?.value, let session = try await operators.session(token: token, nowMs: clock()) else {
            return nil
        }
        return ConsoleVisitor(
            session: session, lang: lang(request), timeZone: zone(request), flash: request.cookies[ConsoleFlash.cookie].flatMap { ConsoleFlash(cookieValue: $0.value) })
    }

    func cookie(_ name: String, _ value: String, maxAge: Int, path: String = "/", httpOnly: Bool = true) -> String {
        "\(name)=\(value); Path=\(path); Max-Age=\(maxAge)" + (httpOnly ? "; HttpOnly" : "") + "; SameSite=Strict" + (secureCookies ? "; Secure" : "")
    }

    /// A form's fields (the last of a repeated name, as `FormEncoding.decode`).
    static func form(_ request: Request, maxBytes: Int) async throws -> [String: String] {
        FormEncoding.decode(String(buffer: try await request.body.collect(upTo: maxBytes)))
    }
}
