/// A QR code scene of an Official Account: the `scene_str` WeChat puts in the scan and subscribe
/// events, what a scan of it does (tags, and an owner for a customer who has none), and the code itself.
public struct QRScene: Codable, Sendable, Equatable {
    public var scene: String
    public var tags: [String]
    /// The salesperson or channel owner (a WeCom UserID or an operator name) given to a customer who has no owner yet.
    public var owner: String?
    public var permanent: Bool
    /// When a temporary code stops working (ms); nil for permanent codes and config scenes.
    public var expiresAt: Int64?
    public var ticket: String?
    /// The URL the code encodes (`http://weixin.qq.com/q/...`); what the PNG draws.
    public var url: String?
    public var createdAt: Int64
    public var createdBy: String
    /// `api` (created through the API), or `config` (a `scenes` entry of the config file, no code).
    public var source: String
    /// Issued by the built-in sandbox (no real WeChat API configured): scannable by nobody.
    public var sandbox: Bool

    public init(
        scene: String, tags: [String], owner: String?, permanent: Bool, expiresAt: Int64?, ticket: String?, url: String?, createdAt: Int64,
        createdBy: String, source: String, sandbox: Bool = false
    ) {
        self.scene = scene
        self.tags = tags
        self.owner = owner
        self.permanent = permanent
        self.expiresAt = expiresAt
        self.ticket = ticket
        self.url = url
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.source = source
        self.sandbox = sandbox
    }

    public static let nameRule = "a scene is 1 to 64 of A-Z a-z 0-9 . _ - :"
    /// WeChat's limits: `scene_str` 1-64 characters; temporary codes live 60 s to 30 days.
    public static let maxTemporarySeconds = 2_592_000
    public static let minTemporarySeconds = 60
    public static let maxTags = 20

    public static func isValidName(_ s: String) -> Bool {
        (1...64).contains(s.utf8.count) && s.utf8.allSatisfy { b in
            (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 46 || b == 95 || b == 45 || b == 58
        }
    }

    /// An owner: 1-64 of letters, digits, `. _ - @` (WeCom UserIDs and operator names fit).
    public static func isValidOwner(_ s: String) -> Bool {
        (1...64).contains(s.utf8.count) && s.utf8.allSatisfy { b in
            (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 46 || b == 95 || b == 45 || b == 64
        }
    }

    public func isExpired(nowMs: Int64) -> Bool { expiresAt.map { $0 <= nowMs } ?? false }
}

/// What a scan or subscribe with a scene applies to the customer.
public struct SceneAttribution: Sendable, Equatable {
    public var tags: [String]
    public var owner: String?

    public init(tags: [String], owner: String? = nil) {
        self.tags = tags
        self.owner = owner
    }
}
