/// An Official Account's custom menu, in WeChat's own `menu/create` shape, checked against WeChat's
/// limits before it is sent: 1-3 top-level buttons of at most 16 bytes, each either one action or 1-5
/// sub-buttons of at most 60 bytes, and each action's own fields (`key` at most 128 bytes, a `view`
/// URL at most 1024 bytes, a mini-program's appid, pagepath and fallback url...).
public struct CustomMenu: Codable, Sendable, Equatable {
    public var button: [MenuButton]

    public init(button: [MenuButton]) { self.button = button }

    /// Every problem, each naming the button (`button[1].sub_button[0] "Search": ...`); empty when WeChat would take it.
    public func problems() -> [String] {
        guard (1...3).contains(button.count) else { return ["button: a menu has 1 to 3 top-level buttons (\(button.count) given)"] }
        var out = [String]()
        for (i, b) in button.enumerated() {
            let at = "button[\(i)] \"\(b.name)\""
            if b.name.isEmpty || b.name.utf8.count > 16 { out.append("\(at): name is 1 to 16 bytes (about 5 Chinese characters)") }
            if let subs = b.subButton, !subs.isEmpty {
                if subs.count > 5 { out.append("\(at): at most 5 sub-buttons (\(subs.count) given)") }
                if b.type != nil { out.append("\(at): a button with sub_button takes no type") }
                for (j, s) in subs.enumerated() {
                    let sat = "button[\(i)].sub_button[\(j)] \"\(s.name)\""
                    if s.name.isEmpty || s.name.utf8.count > 60 { out.append("\(sat): name is 1 to 60 bytes") }
                    if s.subButton != nil { out.append("\(sat): sub-buttons do not nest") }
                    out += s.actionProblems(at: sat)
                }
            } else {
                out += b.actionProblems(at: at)
            }
        }
        return out
    }
}

public struct MenuButton: Codable, Sendable, Equatable {
    public var type: String?
    public var name: String
    public var key: String?
    public var url: String?
    public var mediaId: String?
    public var articleId: String?
    public var appid: String?
    public var pagepath: String?
    public var subButton: [MenuButton]?

    /// The longest `key` WeChat takes (bytes).
    public static let maxKeyBytes = 128
    /// The action types of `menu/create`; the `key` ones send the key in their event.
    public static let keyTypes: Set<String> = [
        "click", "scancode_push", "scancode_waitmsg", "pic_sysphoto", "pic_photo_or_album", "pic_weixin", "location_select",
    ]
    public static let types = keyTypes.union(["view", "miniprogram", "media_id", "article_id", "article_view_limited"])

    enum CodingKeys: String, CodingKey {
        case type, name, key, url, appid, pagepath
        case mediaId = "media_id"
        case articleId = "article_id"
        case subButton = "sub_button"
    }

    public init(
        type: String? = nil, name: String, key: String? = nil, url: String? = nil, mediaId: String? = nil, articleId: String? = nil,
        appid: String? = nil, pagepath: String? = nil, subButton: [MenuButton]? = nil
    ) {
        self.type = type
        self.name = name
        self.key = key
        self.url = url
        self.mediaId = mediaId
        self.articleId = articleId
        self.appid = appid
        self.pagepath = pagepath
        self.subButton = subButton
    }

    func actionProblems(at at: String) -> [String] {
        guard let type else { return ["\(at): type is required (\(Self.types.sorted().joined(separator: ", ")))"] }
        guard Self.types.contains(type) else { return ["\(at): unknown type '\(type)' (\(Self.types.sorted().joined(separator: ", ")))"] }
        var out = [String]()
        if Self.keyTypes.contains(type), (key ?? "").isEmpty || (key ?? "").utf8.count > Self.maxKeyBytes {
            out.append("\(at): \(type) needs a key of 1 to \(Self.maxKeyBytes) bytes")
        }
        if type == "view" || type == "miniprogram", !WeChatContent.isWebURL(url ?? "") {
            out.append("\(at): \(type) needs an http(s) url of at most 1024 bytes\(type == "miniprogram" ? " (opened by clients without mini-program support)" : "")")
        }
        if type == "miniprogram" {
            if !(appid ?? "").hasPrefix("wx") || (appid ?? "").utf8.count > 32 { out.append("\(at): miniprogram needs the mini-program's appid (wx...)") }
            if (pagepath ?? "").isEmpty || (pagepath ?? "").utf8.count > 1024 { out.append("\(at): miniprogram needs a pagepath") }
        }
        if type == "media_id", !WeChatContent.isMediaId(mediaId ?? "") { out.append("\(at): media_id needs a permanent material's media_id") }
        if type == "article_id" || type == "article_view_limited", (articleId ?? "").isEmpty { out.append("\(at): \(type) needs an article_id") }
        return out
    }
}
