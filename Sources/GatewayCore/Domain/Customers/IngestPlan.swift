/// What one verified callback changes, decided without I/O: the identity it belongs to, consent, tags,
/// the timeline entry, the session update, the inbound-stream record and the reply to remember.
public struct IngestPlan: Sendable {
    public var account: String
    /// The replay guard of a callback whose signature leaves the body out (see `WebhookVerifier`);
    /// nil when the dedup key alone guards it.
    public var nonceKey: String?
    /// SHA-256 (hex) of the request's query and body, kept under `nonceKey`.
    public var fingerprint = ""
    public var dedupKey: String
    public var identity: Identity?
    public var unionId: Identity?
    public var consent: (field: String, value: String)?
    public var tags: [String]
    public var interactionType: String
    public var timelineEntry: String
    public var payload: String
    /// The session (account, openid) whose 48 h window this interaction opens.
    public var sessionOpenId: String?
    public var sessionMessage: String
    public var replyMessage: String?
    /// The reply body sent back (plain XML, before any encryption); "" means "success".
    public var reply: String
    public var now: Int64
    /// Per-scene counts (`Keys.qrSceneStats`): a scan or subscribe with a scene counts for it, an
    /// unsubscribe for the scene the follower subscribed through (kept in `sourceField`).
    public var sceneCount: SceneCount?
    /// Given to the customer if it has no owner (the scene's owner).
    public var owner: String?

    public struct SceneCount: Sendable, Equatable {
        public enum Kind: String, Sendable { case scan, subscribe, unsubscribe }
        public var kind: Kind
        /// "" for an unsubscribe (the stored source scene counts).
        public var scene: String
        public var statsKey: String
        /// The customer field holding the scene of the current subscription: `source.wechat:<account>`.
        public var sourceField: String
    }

    /// - Parameter attribution: what the message's QR scene applies (tags, owner), when it has one.
    public static func make(
        message: InboundMessage, account: Account, nonceKey: String?, reply: String, nowMs: Int64, attribution: SceneAttribution? = nil
    ) -> IngestPlan {
        let kind = message.kind
        let interactionType = message.interactionType
        let scene = message.scene
        var identity: Identity?
        var consent: (String, String)?
        var sessionOpenId: String?
        var tags = [String]()

        switch account.platform {
        case .wechat:
            if !message.fromUser.isEmpty { identity = Identity(kind: .openid, account: account.id, value: message.fromUser) }
            switch kind {
            case .event("subscribe"): consent = (ConsentRecord.field("wechat:\(account.id)"), ConsentRecord(state: "granted", at: nowMs).stored)
            case .event("unsubscribe"): consent = (ConsentRecord.field("wechat:\(account.id)"), ConsentRecord(state: "revoked", at: nowMs).stored)
            default: break
            }
            if identity != nil && opensServiceWindow(kind) { sessionOpenId = message.fromUser }
        case .wecom:
            if case .externalContact(let change) = kind, let ext = message["ExternalUserID"], !ext.isEmpty {
                identity = Identity(kind: .wecom, account: account.id, value: ext)
                switch change {
                case "add_external_contact", "add_half_external_contact": consent = (ConsentRecord.field("wecom:\(account.id)"), ConsentRecord(state: "granted", at: nowMs).stored)
                case "del_external_contact", "del_follow_user": consent = (ConsentRecord.field("wecom:\(account.id)"), ConsentRecord(state: "revoked", at: nowMs).stored)
                default: break
                }
            }
        }
        var owner = attribution?.owner
        if let attribution {
            tags += attribution.tags
        } else if account.platform == .wecom, let scene, TagName.isValid("source:" + scene) {
            // A WeCom contact way's state names the channel: its source tag.
            tags.append("source:" + scene)
        }
        var sceneCount: SceneCount?
        if identity != nil {
            // Per-scene counts: QR scenes on WeChat, contact-way states on WeCom (adds and deletes).
            let stats = Keys.qrSceneStats(account: account.id)
            let field = "source.\(account.platform.rawValue):\(account.id)"
            switch kind {
            case .event("subscribe"), .externalContact("add_external_contact"), .externalContact("add_half_external_contact"):
                sceneCount = SceneCount(kind: .subscribe, scene: scene ?? "", statsKey: stats, sourceField: field)
            case .event("SCAN") where scene != nil: sceneCount = SceneCount(kind: .scan, scene: scene!, statsKey: stats, sourceField: field)
            case .event("unsubscribe"), .externalContact("del_external_contact"), .externalContact("del_follow_user"):
                sceneCount = SceneCount(kind: .unsubscribe, scene: "", statsKey: stats, sourceField: field)
            default: break
            }
            // The WeCom member who added the customer is its owner, unless it has one.
            if case .externalContact(let change) = kind, change.hasPrefix("add_"), let member = message["UserID"], QRScene.isValidOwner(member) {
                owner = owner ?? member
            }
        }

        let union = message.unionId.flatMap { u -> Identity? in
            u.utf8.allSatisfy(IdentityInput.isTokenByte) && u.utf8.count <= 128 ? Identity(kind: .unionid, value: u) : nil
        }
        let fields = JSONText.object(strings: message.fields)
        let quotedType = JSONText.quote(interactionType)
        var entry: [(String, String)] = [("at", String(nowMs)), ("type", quotedType), ("account", JSONText.quote(account.id))]
        if let scene { entry.append(("scene", JSONText.quote(scene))) }
        entry.append(("data", fields))
        let timelineEntry = JSONText.object(entry)
        let replyMessage: String? =
            reply.isEmpty
            ? nil
            : JSONText.object([("at", String(nowMs)), ("direction", "\"out\""), ("type", "\"reply\""), ("xml", JSONText.quote(reply))])
        let sessionMessage = JSONText.object([
            ("at", String(nowMs)), ("direction", "\"in\""), ("type", quotedType), ("data", fields),
        ])
        return IngestPlan(
            account: account.id, nonceKey: nonceKey, dedupKey: Keys.dedup(account: account.id, sender: identity?.value, key: message.dedupKey), identity: identity,
            unionId: union, consent: consent, tags: tags, interactionType: interactionType, timelineEntry: timelineEntry,
            payload: fields, sessionOpenId: sessionOpenId, sessionMessage: sessionMessage, replyMessage: replyMessage, reply: reply, now: nowMs,
            sceneCount: sceneCount, owner: owner)
    }

    /// Interactions by the follower that open the 48 h customer-service window.
    static func opensServiceWindow(_ kind: InboundMessage.Kind) -> Bool {
        switch kind {
        case .message: true
        case .event(let e): ["subscribe", "SCAN", "CLICK", "VIEW"].contains(e)
        default: false
        }
    }
}
