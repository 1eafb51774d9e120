import GatewayCore
import HTTPAPI
import Hummingbird
import Ingress
import Store

/// `/api/v1/merge-candidates`: customers an unverified identity from the events API would have merged,
/// for a person to accept (merge) or reject.
struct MergeCandidateRoutes {
    let store: MergeCandidateStore
    let clock: @Sendable () -> Int64

    struct View: Encodable {
        let id: String
        let customer: String
        let other: String
        let identity: IdentityView
        let source: String
        let actor: String
        let createdAt: String
        let state: String
        let decidedAt: String?
        let decidedBy: String?
        let survivor: String?

        init(_ c: MergeCandidateStore.Candidate) {
            id = c.id
            customer = c.customer
            other = c.other
            identity = IdentityView(c.identity)
            source = c.source
            actor = c.actor
            createdAt = JSONResponse.isoTime(c.createdAt)
            state = c.state
            decidedAt = c.decidedAt.map(JSONResponse.isoTime)
            decidedBy = c.decidedBy
            survivor = c.survivor
        }
    }

    struct IdentityView: Encodable {
        let type: String
        let value: String
        let account: String?

        init(_ i: Identity) {
            type = i.kind.rawValue
            value = i.value
            account = i.account
        }
    }

    struct Page: Encodable {
        let candidates: [View]
        let pending: Int
        let nextOffset: Int?
    }

    func register<Context: RequestContext>(on group: DeclaredRoutes<Context>) {
        group.get("/merge-candidates", .mergesRead) { request, _ in
            try await storage {
                let q = request.uri.queryParameters
                guard let limit = Int(q.get("limit") ?? "50"), (1...500).contains(limit), let offset = Int(q.get("offset") ?? "0"), offset >= 0 else {
                    throw APIError.badRequest("limit must be 1...500 and offset 0 or more", code: "invalid_limit")
                }
                let page = try await store.pending(offset: offset, limit: limit)
                let next = offset + page.candidates.count < page.total ? offset + limit : nil
                return try JSONResponse.encoded(Page(candidates: page.candidates.map { View($0) }, pending: page.total, nextOffset: next))
            }
        }
        group.get("/merge-candidates/:id", .mergesRead) { _, context in
            try await storage {
                guard let c = try await store.get(try context.parameters.require("id")) else { throw APIError.notFound("merge candidate") }
                return try JSONResponse.encoded(View(c))
            }
        }
        for action in ["accept", "reject"] {
            group.post("/merge-candidates/:id/\(action)", .mergesWrite) { _, context in
                try await storage {
                    let id = try context.parameters.require("id")
                    let actor = Principal.current?.actor ?? ""
                    let decision = action == "accept" ? try await store.accept(id, by: actor, nowMs: clock()) : try await store.reject(id, by: actor, nowMs: clock())
                    switch decision {
                    case .decided(let c):
                        if let s = c.survivor { AuditNote.target(c.customer, c.other, s) } else { AuditNote.target(c.customer, c.other) }
                        return try JSONResponse.encoded(View(c))
                    case .alreadyDecided(let c): throw APIError(.conflict, "already_decided", "this candidate was \(c.state) already")
                    case .notFound: throw APIError.notFound("merge candidate")
                    }
                }
            }
        }
    }
}
