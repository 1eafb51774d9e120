import HTTPAPI
import Hummingbird
import Ingress
import Store

/// `?limit=&before=` of a newest-first list: the page size and where the page starts (the previous
/// page's `next`). Anything else is a 400 naming the parameter.
struct PageQuery {
    let limit: Int
    let before: PageCursor?

    init(_ request: Request, defaultLimit: Int, maxLimit: Int) throws {
        let q = request.uri.queryParameters
        guard let limit = Int(q.get("limit") ?? String(defaultLimit)), (1...maxLimit).contains(limit) else {
            throw APIError.badRequest("limit must be 1...\(maxLimit)", code: "invalid_limit")
        }
        self.limit = limit
        if let text = q.get("before") {
            guard let cursor = PageCursor(text: String(text)) else {
                throw APIError.badRequest("before must be the next cursor of a previous page", code: "invalid_cursor")
            }
            before = cursor
        } else {
            before = nil
        }
    }
}
