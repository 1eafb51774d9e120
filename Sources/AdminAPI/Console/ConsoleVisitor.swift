import Foundation
import GatewayCore
import Hummingbird
import Store

/// Who is looking at a console page: the signed-in operator, their language and time zone, and the
/// one-time notice left by the last form (`scrm_flash`).
struct ConsoleVisitor {
    let session: OperatorStore.Session
    let lang: String
    let timeZone: TimeZone
    let flash: ConsoleFlash?

    var principal: Principal { Principal(kind: .operator, id: session.operatorName, role: session.role, grants: session.grants) }
    func can(_ permission: Permission) -> Bool { principal.allows(permission) }
    func t(_ key: String) -> String { ConsoleStrings.text(key, lang) }

    static let sections: [(key: String, href: String, needs: Permission)] = [
        ("dashboard", "/console", .operationsRead), ("customers", "/console/customers", .customersRead),
        ("audiences", "/console/audiences", .audiencesRead), ("campaigns", "/console/campaigns", .campaignsRead),
        ("journeys", "/console/journeys", .journeysRead), ("channels", "/console/channels", .channelsRead), ("imports", "/console/imports", .importsRead),
        ("operations", "/console/operations", .operationsRead),
    ]

    /// What every signed-in page shows around its body: navigation, the operator, the form token,
    /// what the role may do (`can.campaigns_write`), the notice and the language and zone choices.
    func frame(section: String) -> [String: Any] {
        var can = [String: Bool]()
        for p in Permission.allCases where principal.allows(p) { can[p.rawValue.replacingOccurrences(of: ".", with: "_")] = true }
        var frame: [String: Any] = [
            "operator": session.operatorName, "role": session.role.rawValue, "csrf": session.csrf, "can": can, "timeZone": timeZone.identifier,
            "nav": Self.sections.filter { self.can($0.needs) }.map { ["href": $0.href, "label": t($0.key), "current": $0.key == section] },
            "languages": ConsoleStrings.languages.map { ["code": $0, "name": ConsoleStrings.names[$0] ?? $0, "selected": $0 == lang] },
        ]
        if let flash { frame["flash"] = ["ok": flash.ok, "text": flash.text] }
        return frame
    }

    /// `2026-12-02 15:04` in the visitor's zone, from the API's ISO time; the input when it is not one.
    /// An ISO 8601 time, or milliseconds since the epoch (what timelines and sessions store), in the
    /// operator's zone.
    func time(_ iso: String?) -> String {
        guard let iso else { return "" }
        if iso.count >= 12, let ms = Int64(iso) { return ConsoleFormat.local(Date(timeIntervalSince1970: Double(ms) / 1000), timeZone) }
        guard let date = ConsoleFormat.parseISO(iso) else { return iso }
        return ConsoleFormat.local(date, timeZone)
    }
}

/// A one-time notice for the next page: a form's success (a word of `strings.json`) or the API's error message.
struct ConsoleFlash: Equatable {
    let ok: Bool
    let text: String

    static let cookie = "scrm_flash"

    var cookieValue: String { Data(((ok ? "ok:" : "error:") + text).utf8).base64EncodedString().replacingOccurrences(of: "=", with: "~") }

    init(ok: Bool, text: String) {
        self.ok = ok
        self.text = String(text.prefix(500))
    }

    init?(cookieValue: String) {
        guard let data = Data(base64Encoded: cookieValue.replacingOccurrences(of: "~", with: "=")), let s = String(data: data, encoding: .utf8) else { return nil }
        if s.hasPrefix("ok:") { self.init(ok: true, text: String(s.dropFirst(3))) } else if s.hasPrefix("error:") {
            self.init(ok: false, text: String(s.dropFirst(6)))
        } else { return nil }
    }
}

enum ConsoleFormat {
    /// The API's times (with or without fractions of a second), read as `CampaignDefinition` reads them.
    static func parseISO(_ s: String) -> Date? {
        CampaignDefinition.milliseconds(s).map { Date(timeIntervalSince1970: Double($0) / 1000) }
    }

    static func local(_ date: Date, _ zone: TimeZone) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: date)
        return String(format: "%04d-%02d-%02d %02d:%02d", c.year ?? 0, c.month ?? 0, c.day ?? 0, c.hour ?? 0, c.minute ?? 0)
    }

    /// `2026-12-02T10:00` (a `datetime-local` input) in `zone` -> `2026-12-02T10:00:00+08:00`.
    static func isoFromLocal(_ s: String, _ zone: TimeZone) -> String? {
        let parts = s.split(whereSeparator: { "-T:".contains($0) }).compactMap { Int($0) }
        guard parts.count >= 5 else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        guard let date = calendar.date(from: DateComponents(year: parts[0], month: parts[1], day: parts[2], hour: parts[3], minute: parts[4])) else { return nil }
        let offset = zone.secondsFromGMT(for: date) / 60
        return String(format: "%04d-%02d-%02dT%02d:%02d:00%@%02d:%02d", parts[0], parts[1], parts[2], parts[3], parts[4], offset < 0 ? "-" : "+", abs(offset) / 60, abs(offset) % 60)
    }

    /// `1h 05m`, `4m 10s`, `12s`.
    static func duration(_ seconds: Int) -> String {
        if seconds >= 3600 { return String(format: "%dh %02dm", seconds / 3600, seconds % 3600 / 60) }
        if seconds >= 60 { return String(format: "%dm %02ds", seconds / 60, seconds % 60) }
        return "\(seconds)s"
    }

    /// `1,234,567`.
    static func count(_ n: Int) -> String {
        let digits = Array(String(abs(n)))
        var out = ""
        for (i, d) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(d)
        }
        return (n < 0 ? "-" : "") + out
    }
}
