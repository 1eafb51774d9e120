import GatewayCore
import HTTPAPI
import Hummingbird
import Metrics
import Store
import Synchronization

/// Every route the gateway serves, with the permission it declares. Routes are added only through
/// `DeclaredRoutes`, so a route without a permission cannot be written; a test walks the router and
/// this table to prove it.
public final class RouteTable: Sendable {
    public struct Declaration: Sendable, Hashable {
        public let method: String
        public let path: String
        public let permission: Permission

        /// Whether a call writes an audit entry: its permission says so, or it changes the caller's own session.
        public var isAudited: Bool { permission.isAudited || (permission == .session && method != "GET" && method != "HEAD") }
    }

    private let entries = Mutex<[Declaration]>([])

    public init() {}

    func declare(_ d: Declaration) { entries.withLock { $0.append(d) } }

    public var declarations: [Declaration] { entries.withLock { $0 } }

    public func permission(method: String, path: String) -> Permission? {
        declarations.first { $0.method == method && $0.path == path }?.permission
    }
}

/// Registers routes that each declare a `Permission`. The caller (`Principal.current`, set by the
/// admin API's authentication) must hold it, or the call is refused with 403 before the handler
/// runs. Audited permissions, and every refusal, write one entry to the audit log.
public struct DeclaredRoutes<Context: RequestContext>: Sendable {
    let routes: any RouterMethods<Context>
    let prefix: String
    let table: RouteTable
    let audit: AuditLog?
    let clock: @Sendable () -> Int64

    public init(_ routes: any RouterMethods<Context>, prefix: String = "", table: RouteTable, audit: AuditLog?, clock: @escaping @Sendable () -> Int64) {
        self.routes = routes
        self.prefix = prefix
        self.table = table
        self.audit = audit
        self.clock = clock
    }

    public func get(_ path: String, _ permission: Permission, use handler: @escaping @Sendable (Request, Context) async throws -> some ResponseGenerator) {
        on(path, method: .get, permission, use: handler)
    }
    public func post(_ path: String, _ permission: Permission, use handler: @escaping @Sendable (Request, Context) async throws -> some ResponseGenerator) {
        on(path, method: .post, permission, use: handler)
    }
    public func put(_ path: String, _ permission: Permission, use handler: @escaping @Sendable (Request, Context) async throws -> some ResponseGenerator) {
        on(path, method: .put, permission, use: handler)
    }
    public func patch(_ path: String, _ permission: Permission, use handler: @escaping @Sendable (Request, Context) async throws -> some ResponseGenerator) {
        on(path, method: .patch, permission, use: handler)
    }
    public func delete(_ path: String, _ permission: Permission, use handler: @escaping @Sendable (Request, Context) async throws -> some ResponseGenerator) {
        on(path, method: .delete, permission, use: handler)
    }

    public func on(
        _ path: String, method: HTTPRequest.Method, _ permission: Permission,
        use handler: @escaping @Sendable (Request, Context) async throws -> some ResponseGenerator
    ) {
        let route = RouterPath(prefix + path).description
        let declaration = RouteTable.Declaration(method: method.rawValue, path: route, permission: permission)
        table.declare(declaration)
        let audited = declaration.isAudited
        if permission == .public {
            routes.on(RouterPath(path), method: method, use: handler)
            return
        }
        let audit = self.audit
        let clock = self.clock
        routes.on(RouterPath(path), method: method) { request, context -> Response in
            guard let principal = Principal.current else {
                throw APIError(.unauthorized, "unauthorized", "this route needs an API key or a session")
            }
            RequestActor.current?.set(principal.actor)
            let note = AuditNote()
            let targets = { note.targets(context.parameters.map { $0.value.removingPercentEncoding ?? String($0.value) }) }
            guard principal.allows(permission) else {
                Counter(label: "scrm_access_denied_total", dimensions: [("permission", permission.rawValue)]).increment()
                await write(audit, principal, method, route, targets(), 403, "denied", clock())
                throw APIError(.forbidden, "forbidden", "the \(principal.role.rawValue) role may not do this (needs \(permission.rawValue))")
            }
            do {
                let response = try await AuditNote.$current.withValue(note) { try await handler(request, context).response(from: request, context: context) }
                if audited {
                    let ok = response.status.code < 400
                    await write(audit, principal, method, route, targets(), Int(response.status.code), ok ? "ok" : "failed", clock())
                }
                return response
            } catch {
                if audited {
                    let status = (error as? any HTTPResponseError)?.status.code ?? 500
                    await write(audit, principal, method, route, targets(), Int(status), status == 403 ? "denied" : "failed", clock())
                }
                throw error
            }
        }
    }

    private func write(_ audit: AuditLog?, _ p: Principal, _ method: HTTPRequest.Method, _ route: String, _ targets: [String], _ status: Int, _ outcome: String, _ at: Int64) async {
        guard let audit else { return }
        let entry = AuditLog.Entry(actor: p.actor, role: p.role.rawValue, method: method.rawValue, route: route, targets: targets, status: status, outcome: outcome, at: at)
        do { try await audit.append(entry) } catch { Counter(label: "scrm_audit_write_failures_total").increment() }
    }
}

/// What a handler adds to its audit entry beyond the path's ids: the id it created, the customers
/// it changed.
public final class AuditNote: Sendable {
    private let extra = Mutex<[String]>([])

    public init() {}

    /// Notes ids the call created or changed (the first 50 are kept).
    public static func target(_ ids: String...) { current?.extra.withLock { $0 = Array(($0 + ids).prefix(50)) } }
    public static func targets(_ ids: [String]) { current?.extra.withLock { $0 = Array(($0 + ids).prefix(50)) } }

    func targets(_ pathIds: [String]) -> [String] { pathIds + extra.withLock { $0 } }

    @TaskLocal public static var current: AuditNote?
}

extension Principal {
    /// For a route whose body decides what it needs (a consent-only patch, a send to an arbitrary
    /// address): refuses with 403 unless the caller holds `permission` too.
    public static func require(_ permission: Permission, for what: String) throws {
        guard let p = current, p.allows(permission) else {
            throw APIError(.forbidden, "forbidden", "the \(current?.role.rawValue ?? "anonymous") role may not \(what) (needs \(permission.rawValue))")
        }
    }
}

/// Who made the request, for the access log: filled in by `DeclaredRoutes` once the caller is known.
public final class RequestActor: Sendable {
    private let value = Mutex<String?>(nil)

    public init() {}

    public var actor: String? { value.withLock { $0 } }
    func set(_ actor: String) { value.withLock { $0 = actor } }

    @TaskLocal public static var current: RequestActor?
}
