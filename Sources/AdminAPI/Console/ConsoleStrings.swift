import Foundation
import GatewayCore

/// The console's words in English, Simplified Chinese and Japanese (`strings.json`: one entry per
/// word, every language side by side), chosen from Accept-Language or the operator's choice (the
/// `lang` cookie).
enum ConsoleStrings {
    static let languages = ["en", "zh-Hans", "ja"]
    static let names = ["en": "English", "zh-Hans": "简体中文", "ja": "日本語"]

    /// language -> key -> text. A key missing in a language falls back to English (a test keeps them complete).
    static let table: [String: [String: String]] = {
        guard case .object(let entries)? = JSONValue.parse(PackageResources.strings_json) else { fatalError("Console/strings.json is not JSON") }
        var table = [String: [String: String]]()
        for (key, value) in entries {
            for lang in languages {
                table[lang, default: [:]][key] = value.lookup(lang)?.scalarText ?? value.lookup("en")?.scalarText ?? key
            }
        }
        return table
    }()

    static func text(_ key: String, _ lang: String) -> String { table[lang]?[key] ?? table["en"]?[key] ?? key }

    /// The first language of an Accept-Language header we have (zh, zh-CN, zh-Hans -> zh-Hans), else English.
    static func language(acceptLanguage: String?, cookie: String?) -> String {
        if let cookie, languages.contains(cookie) { return cookie }
        let ranges = (acceptLanguage ?? "").split(separator: ",").map { part -> (String, Double) in
            let pieces = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            let q = pieces.dropFirst().first { $0.hasPrefix("q=") }.flatMap { Double($0.dropFirst(2)) } ?? 1
            return (pieces.first?.lowercased() ?? "", q)
        }
        for (range, _) in ranges.sorted(by: { $0.1 > $1.1 }) {
            if range.hasPrefix("zh") { return "zh-Hans" }
            if range.hasPrefix("ja") { return "ja" }
            if range.hasPrefix("en") { return "en" }
        }
        return "en"
    }
}
