/// The console's words in English, Simplified Chinese and Japanese, chosen from Accept-Language
/// (or the operator's choice, a `lang` cookie).
enum ConsoleStrings {
    static let languages = ["en", "zh-Hans", "ja"]

    static let table: [String: [String: String]] = [
        "en": [
            "skip": "Skip to content", "navigation": "Console", "dashboard": "Dashboard", "signIn": "Sign in", "signOut": "Sign out",
            "name": "Name", "password": "Password", "welcome": "Signed in.", "invalid": "The name or the password is wrong.",
            "locked": "Too many failed sign-ins: try again later.", "expired": "The form expired: please sign in again.",
        ],
        "zh-Hans": [
            "skip": "跳到正文", "navigation": "控制台", "dashboard": "概览", "signIn": "登录", "signOut": "退出", "name": "用户名", "password": "密码",
            "welcome": "已登录。", "invalid": "用户名或密码错误。", "locked": "登录失败次数过多，请稍后再试。", "expired": "表单已过期，请重新登录。",
        ],
        "ja": [
            "skip": "本文へ移動", "navigation": "コンソール", "dashboard": "ダッシュボード", "signIn": "ログイン", "signOut": "ログアウト", "name": "ユーザー名",
            "password": "パスワード", "welcome": "ログインしました。", "invalid": "ユーザー名またはパスワードが違います。",
            "locked": "ログインの失敗が多すぎます。しばらくしてから再試行してください。", "expired": "フォームの有効期限が切れました。もう一度ログインしてください。",
        ],
    ]

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
