import Foundation
import GatewayCore
import HTTPAPI
import Hummingbird
import Ingress
import Store

/// `/api/v1/tags...`.
struct TagRoutes {
    let tags: TagStore
    let maxBulkIds: Int

    func register<Context: RequestContext>(on group: DeclaredRoutes<Context>) {
        group.get("/tags", .tagsRead) { _, _ in
            try await storage {
                return try JSONResponse.encoded(TagList(tags: try await tags.all().map { TagCount(name: $0.name, customers: $0.count) }))
            }
        }
        group.post("/tags", .tagsWrite) { request, _ in
            try await storage {
                let body = try await request.decodeJSON(NameBody.self, maxBytes: 4096)
                let name = try validName(body.name)
                AuditNote.target(name)
                let created = try await tags.create(name)
                return try JSONResponse.encoded(TagCount(name: name, customers: try await tags.count(name)), status: created ? .created : .ok)
            }
        }
        group.delete("/tags/:name", .tagsWrite) { _, context in
            try await storage {
                let name = try pathName(context)
                guard let removed = try await tags.delete(name) else { throw APIError.notFound("tag") }
                return try JSONResponse.encoded(TagDeleted(name: name, removedFromCustomers: removed))
            }
        }
        group.post("/tags/:name/customers", .tagsWrite) { request, context in try await storage { try await bulk(add: true, request, context) } }
        group.delete("/tags/:name/customers", .tagsWrite) { request, context in try await storage { try await bulk(add: false, request, context) } }
        group.get("/tags/:name/customers", .tagsRead) { request, context in
            try await storage {
                let name = try pathName(context)
                guard try await tags.exists(name) else { throw APIError.notFound("tag") }
                let q = request.uri.queryParameters
                let cursor = q.get("cursor").map { String($0) } ?? "0"
                // SSCAN's cursor, or on a cluster `<slot>-<SSCAN cursor>`.
                guard cursor.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == "-") }), !cursor.isEmpty, cursor.count <= 40 else { throw APIError.badRequest("cursor must be the nextCursor of the previous page", code: "invalid_cursor") }
                guard let limit = Int(q.get("limit") ?? "100"), (1...1000).contains(limit) else {
                    throw APIError.badRequest("limit must be 1...1000", code: "invalid_limit")
                }
                let page: (ids: [String], nextCursor: String?)
                do { page = try await tags.customers(name, cursor: cursor, limit: limit) } catch is TagStore.InvalidCursor {
                    throw APIError.badRequest("cursor must be the nextCursor of the previous page", code: "invalid_cursor")
                }
                return try JSONResponse.encoded(
                    TagMembers(name: name, count: try await tags.count(name), customerIds: page.ids, nextCursor: page.nextCursor))
            }
        }
    }

    struct NameBody: Decodable { let name: String }

    struct TagCount: Encodable {
        let name: String
        let customers: Int
    }

    struct TagList: Encodable { let tags: [TagCount] }

    struct TagDeleted: Encodable {
        let name: String
        let removedFromCustomers: Int
    }

    /// A page of a tag's customers; `nextCursor` is null on the last page.
    struct TagMembers: Encodable {
        let name: String
        let count: Int
        let customerIds: [String]
        @Null var nextCursor: String?
    }
    struct IdsBody: Decodable { let customerIds: [String] }

    /// The tag name from the path; Hummingbird leaves path parameters percent-encoded (e.g. 贵宾 arrives as %E8%B4%B5%E5%AE%BE).
    func pathName(_ context: some RequestContext) throws -> String {
        let raw = try context.parameters.require("name")
        guard let decoded = raw.removingPercentEncoding else { throw APIError.badRequest("tag name is not valid percent-encoding", code: "invalid_tag") }
        return try validName(decoded)
    }

    func validName(_ name: String) throws -> String {
        guard TagName.isValid(name) else { throw APIError.badRequest(TagName.rule, code: "invalid_tag") }
        return name
    }

    func bulk(add: Bool, _ request: Request, _ context: some RequestContext) async throws -> Response {
        let name = try pathName(context)
        let body = try await request.decodeJSON(IdsBody.self, maxBytes: maxBulkIds * 40 + 1024)
        guard !body.customerIds.isEmpty, body.customerIds.count <= maxBulkIds else {
            throw APIError.badRequest("customerIds must hold 1 to \(maxBulkIds) ids", code: "invalid_body")
        }
        if let bad = body.customerIds.first(where: { !ULID.isValid($0) }) {
            throw APIError.badRequest("\(bad.prefix(40)) is not a customer id", code: "invalid_customer_id")
        }
        if !add, !(try await tags.exists(name)) { throw APIError.notFound("tag") }
        AuditNote.targets(body.customerIds)
        let result = try await tags.apply(name, add: add, customerIds: body.customerIds)
        return try JSONResponse.encoded(
            BulkAnswer(
                name: name, added: add ? result.changed : nil, removed: add ? nil : result.changed, unknown: result.unknown,
                count: try await tags.count(name)))
    }

    /// What a bulk tag or untag did: how many customers changed (`added` or `removed`), the ids that
    /// are no customer, and the tag's size after it.
    struct BulkAnswer: Encodable {
        let name: String
        let added: Int?
        let removed: Int?
        let unknown: [String]
        let count: Int
    }
}
