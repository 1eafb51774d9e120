import GatewayCore
import HTTPAPI
import Hummingbird
import Ingress
import Outbound
import RedisClient
import Store

/// `/api/v1/customers...` and `/api/v1/sessions...`.
struct CustomerRoutes {
    let store: CustomerStore
    let messages: MessageStore
    let clock: @Sendable () -> Int64
    let windowHours: Int
    /// Accounts whose reply window differs from `windowHours` (Douyin's 24 h).
    var accountWindowHours: [String: Int] = [:]
    let maxBodyBytes: Int

    func register<Context: RequestContext>(on group: DeclaredRoutes<Context>) {
        group.get("/customers/lookup", .customersRead) { request, _ in try await storage { try await lookup(request) } }
        group.get("/customers/:id", .customersRead) { _, context in try await storage { try await customer(context.parameters.require("id")) } }
        group.patch("/customers/:id", .consentWrite) { request, context in try await storage { try await patch(context.parameters.require("id"), request) } }
        group.get("/customers/:id/timeline", .customersRead) { request, context in
            try await storage { try await timeline(context.parameters.require("id"), request) }
        }
        group.get("/customers/:id/messages", .messagesRead) { request, context in
            try await storage { try await customerMessages(context.parameters.require("id"), request) }
        }
        group.get("/customers/:id/score", .customersRead) { _, context in try await storage { try await score(context.parameters.require("id")) } }
        group.post("/customers/:id/identities", .identitiesWrite) { request, context in
            try await storage { try await bind(context.parameters.require("id"), request) }
        }
        group.get("/sessions/:account/:openid", .customersRead) { _, context in
            try await storage { try await session(context.parameters.require("account"), context.parameters.require("openid")) }
        }
    }

    func customer(_ id: String, suffix: String = "") async throws -> Response {
        switch try await store.customer(id: id, nowMs: clock()) {
        case .found(let c): return try JSONResponse.encoded(CustomerView(c, attributes: store.attributes))
        case .merged(let into): return try redirect(from: id, to: into, suffix: suffix)
        case .notFound: throw APIError.notFound("customer")
        }
    }

    /// Profile, time zone and consent; answers the customer as it is now. A merged id answers 308 to
    /// the survivor without changing anything (the client repeats the PATCH there).
    func patch(_ id: String, _ request: Request) async throws -> Response {
        let body = try await request.decodeJSON(JSONValue.self, maxBytes: maxBodyBytes)
        let patch = try CustomerPatchRequest.parse(body, attributes: store.attributes)
        if !patch.fields.isEmpty || !patch.remove.isEmpty { try Principal.require(.customersWrite, for: "change a profile (only consent)") }
        switch try await store.patch(id: id, patch, nowMs: clock()) {
        case .updated: return try await customer(id)
        case .merged(let into): return try redirect(from: id, to: into, suffix: "")
        case .notFound: throw APIError.notFound("customer")
        }
    }

    func redirect(from id: String, to into: String, suffix: String) throws -> Response {
        var response = try JSONResponse.encoded(["id": id, "mergedInto": into], status: .permanentRedirect)
        response.headers[.location] = "/api/v1/customers/\(into)\(suffix)"
        return response
    }

    func lookup(_ request: Request) async throws -> Response {
        let q = request.uri.queryParameters
        let account = q.get("account").map { String($0) }
        var identity: Identity?
        do {
            for kind in Identity.Kind.allCases {
                guard let value = q.get(kind.rawValue) else { continue }
                identity = try IdentityInput.make(type: kind.rawValue, value: String(value), account: account)
                break
            }
        } catch let error as IdentityInput.Invalid {
            throw APIError.badRequest(error.message, code: "invalid_identity")
        }
        guard let identity else {
            throw APIError.badRequest("give one of openid (with account), wecom (with account), unionid, phone, email", code: "missing_identity")
        }
        guard let id = try await store.lookup(identity) else { throw APIError.notFound("customer") }
        return try await customer(id)
    }

    func timeline(_ id: String, _ request: Request) async throws -> Response {
        let limitText = request.uri.queryParameters.get("limit") ?? "50"
        guard let limit = Int(limitText), (1...500).contains(limit) else { throw APIError.badRequest("limit must be 1...500", code: "invalid_limit") }
        switch try await store.customer(id: id) {
        case .merged(let into): return try redirect(from: id, to: into, suffix: "/timeline")
        case .notFound: throw APIError.notFound("customer")
        case .found:
            let items = try await store.timeline(id: id, limit: limit)
            return try JSONResponse.encoded(TimelineView(customerId: id, items: items.map(JSONValue.stored)))
        }
    }

    /// The customer's outbound messages, newest first, a page at a time (`before` = the previous page's `next`).
    func customerMessages(_ id: String, _ request: Request) async throws -> Response {
        let page = try PageQuery(request, defaultLimit: 20, maxLimit: 200)
        switch try await store.customer(id: id) {
        case .merged(let into): return try redirect(from: id, to: into, suffix: "/messages")
        case .notFound: throw APIError.notFound("customer")
        case .found:
            let found = try await messages.customerMessages(id, limit: page.limit, before: page.before)
            return try JSONResponse.encoded(CustomerMessagesView(messages: found.messages.map(MessageView.init), next: found.next?.text))
        }
    }

    /// The score as it is now (decayed since `scoredAt`, when the rules set a half-life), the stage,
    /// and the rules that made it (newest first, from the timeline).
    func score(_ id: String) async throws -> Response {
        switch try await store.customer(id: id, nowMs: clock()) {
        case .merged(let into): return try redirect(from: id, to: into, suffix: "/score")
        case .notFound: throw APIError.notFound("customer")
        case .found(let c):
            let reasons = try await store.timeline(id: id, limit: 500).filter { $0.contains("\"type\":\"score\"") }.prefix(50)
            let score = c.fields["score"].flatMap(Double.init) ?? 0
            return try JSONResponse.encoded(
                ScoreView(
                    customerId: id, score: (score * 100).rounded() / 100, stage: c.fields["stage"] ?? "new",
                    scoredAt: c.fields["scoreAt"].flatMap { Int64($0) }.map(JSONResponse.isoTime), reasons: reasons.map(JSONValue.stored)))
        }
    }

    struct IdentityBody: Decodable {
        let type: String
        let value: String
        let account: String?
    }

    func bind(_ id: String, _ request: Request) async throws -> Response {
        let body = try await request.decodeJSON(IdentityBody.self, maxBytes: maxBodyBytes)
        let identity: Identity
        do { identity = try IdentityInput.make(type: body.type, value: body.value, account: body.account) } catch let error as IdentityInput.Invalid {
            throw APIError.badRequest(error.message, code: "invalid_identity")
        }
        if case .merged(let into) = try await store.customer(id: id) { return try redirect(from: id, to: into, suffix: "/identities") }
        let outcome = try await store.bind(identity, to: id, nowMs: clock())
        let survivor: String
        var merged: String?
        let result: String
        switch outcome {
        case .notFound: throw APIError.notFound("customer")
        case .bound(let c): (survivor, result) = (c, "bound")
        case .alreadyBound(let c): (survivor, result) = (c, "already_bound")
        case .merged(let s, let m):
            (survivor, result) = (s, "merged")
            merged = m
        }
        guard case .found(let c) = try await store.customer(id: survivor, nowMs: clock()) else { throw APIError.notFound("customer") }
        return try JSONResponse.encoded(BindAnswer(result: result, customer: CustomerView(c, attributes: store.attributes), merged: merged))
    }

    struct BindAnswer: Encodable {
        /// bound, already_bound or merged.
        let result: String
        let customer: CustomerView
        /// The customer merged into this one, when the identity linked two.
        let merged: String?
    }

    struct TimelineView: Encodable {
        let customerId: String
        /// Newest first: {at, type, data}.
        let items: [JSONValue]
    }

    struct ScoreView: Encodable {
        let customerId: String
        let score: Double
        let stage: String
        let scoredAt: String?
        /// The score entries of the timeline, newest first.
        let reasons: [JSONValue]
    }

    struct SessionView: Encodable {
        let account: String
        let openid: String
        let customerId: String?
        let lastInteractionAt: String
        let windowOpenUntil: String
        let windowOpen: Bool
        /// Oldest first.
        let messages: [JSONValue]
    }

    func session(_ account: String, _ openid: String) async throws -> Response {
        guard let s = try await store.session(account: account, openid: openid) else { throw APIError.notFound("session") }
        let windowEnd = s.lastInteractionAt + Int64(accountWindowHours[account] ?? windowHours) * 3_600_000
        return try JSONResponse.encoded(
            SessionView(
                account: account, openid: openid, customerId: s.customerId, lastInteractionAt: JSONResponse.isoTime(s.lastInteractionAt),
                windowOpenUntil: JSONResponse.isoTime(windowEnd), windowOpen: clock() < windowEnd, messages: s.messages.map(JSONValue.stored)))
    }
}

/// Storage failures become a 503 with no internals.
func storage(_ body: () async throws -> Response) async throws -> Response {
    do { return try await body() } catch is RedisError { throw APIError.unavailable }
}
