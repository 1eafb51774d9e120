/// User agents that follow links without a person: mail security scanners, chat link previews,
/// crawlers and HTTP libraries. Their requests are redirected (the scanner must see the real page)
/// but not counted as clicks or opens.
public enum LinkScanners {
    static let markers = [
        "bot", "crawler", "spider", "preview", "scanner", "facebookexternalhit", "whatsapp", "skypeuripreview", "microsoft office",
        "ms-office", "barracuda", "proofpoint", "mimecast", "urldefense", "safelinks", "symantec", "trendmicro", "curl/", "wget/",
        "python-requests", "python-urllib", "go-http-client", "java/", "okhttp", "headlesschrome", "phantomjs",
    ]

    public static func isScanner(userAgent: String?) -> Bool {
        guard let ua = userAgent?.lowercased(), !ua.isEmpty else { return false }
        return markers.contains { ua.contains($0) }
    }
}
