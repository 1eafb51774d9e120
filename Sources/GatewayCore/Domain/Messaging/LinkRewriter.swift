import Foundation

/// Finds the links in a message's content and replaces each with a tracked one. Text: every
/// `http(s)://` URL (trailing punctuation left outside). HTML: `href="..."` / `href='...'` values.
/// The same URL gets the same number each time; links starting with one of `skip` (the gateway's
/// own: the unsubscribe link, a tracked link already) stay as they are.
public struct LinkRewriter {
    /// The original URLs, in the order of their numbers.
    public private(set) var urls: [String] = []
    let skip: [String]
    /// Most links one message may have tracked (number 255 is the open pixel).
    public static let maxLinks = 254

    public init(skip: [String]) { self.skip = skip }

    /// The number of `url`, new or known; nil when it is not to be tracked or there are too many.
    mutating func number(_ url: String) -> Int? {
        if skip.contains(where: { url.hasPrefix($0) }) { return nil }
        if let i = urls.firstIndex(of: url) { return i }
        guard urls.count < Self.maxLinks else { return nil }
        urls.append(url)
        return urls.count - 1
    }

    /// One link (a WeChat template's `link`).
    public mutating func rewriteURL(_ url: String, _ tracked: (Int) -> String?) -> String {
        guard url.hasPrefix("http://") || url.hasPrefix("https://"), let n = number(url), let t = tracked(n) else { return url }
        return t
    }

    /// Every URL in plain text.
    public mutating func rewriteText(_ text: String, _ tracked: (Int) -> String?) -> String {
        var out = ""
        var rest = Substring(text)
        while let start = Self.nextURLStart(rest) {
            out += rest[..<start]
            var end = rest[start...].firstIndex { $0.isWhitespace || "<>\"'".contains($0) } ?? rest.endIndex
            while end > start, ".,;:!?)]}".contains(rest[rest.index(before: end)]) { end = rest.index(before: end) }
            let url = String(rest[start..<end])
            out += rewriteURL(url, tracked)
            rest = rest[end...]
        }
        return out + rest
    }

    /// Every `href` in HTML.
    public mutating func rewriteHTML(_ html: String, _ tracked: (Int) -> String?) -> String {
        var out = ""
        var rest = Substring(html)
        while let attr = rest.range(of: "href=", options: .caseInsensitive) {
            out += rest[..<attr.upperBound]
            rest = rest[attr.upperBound...]
            guard let quote = rest.first, quote == "\"" || quote == "'" else { continue }
            let body = rest.dropFirst()
            guard let close = body.firstIndex(of: quote) else { break }
            out.append(quote)
            let value = String(body[..<close])
            // The URL the attribute means (`&amp;` is `&`); kept as written when not tracked.
            let url = value.replacingOccurrences(of: "&amp;", with: "&")
            let rewritten = rewriteURL(url, tracked)
            out += rewritten == url ? value : rewritten
            out.append(quote)
            rest = body[body.index(after: close)...]
        }
        return out + rest
    }

    static func nextURLStart(_ s: Substring) -> Substring.Index? {
        let http = s.range(of: "http://")?.lowerBound
        let https = s.range(of: "https://")?.lowerBound
        switch (http, https) {
        case (nil, nil): return nil
        case (let a?, nil): return a
        case (nil, let b?): return b
        case (let a?, let b?): return min(a, b)
        }
    }
}
