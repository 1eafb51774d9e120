import Foundation
import GatewayCore
import Hummingbird

/// Newest-first lists a page at a time: the console page's own `?before=` goes to the API, and the
/// API's `next` becomes the "older" link.
enum ConsolePager {
    /// The API path of the page the console URL asks for.
    static func apiPath(_ base: String, limit: Int, _ request: Request) -> String {
        let before = ConsolePages.query(request)["before"].map { "&before=" + ConsolePages.queryValue($0) }
        return base + "?limit=\(limit)" + (before ?? "")
    }

    /// `olderHref` (when the API has a next page) and `newestHref` (when this is not the first page).
    static func links(_ list: JSONValue, consolePath: String, _ request: Request) -> [String: Any] {
        var links: [String: Any] = [:]
        if let next = list.lookup("next")?.scalarText {
            links["olderHref"] = consolePath + "?before=" + ConsolePages.queryValue(next)
        }
        if ConsolePages.query(request)["before"] != nil { links["newestHref"] = consolePath }
        return links
    }
}
