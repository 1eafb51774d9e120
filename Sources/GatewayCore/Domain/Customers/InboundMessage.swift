/// A platform callback (WeChat OA message or event, WeCom callback), parsed from its `<xml>` root.
///
/// `fields` holds every element, nested ones flattened with dots (`ScanCodeInfo.ScanResult`) and
/// repeated ones indexed (`PicList.item[1].PicMd5Sum`), so unknown types are kept whole.
public struct InboundMessage: Sendable, Equatable {
    public let fields: [String: String]

    public init(fields: [String: String]) { self.fields = fields }

    public init(xml: XMLElement) throws {
        guard xml.name == "xml" else { throw XMLParseError(reason: "root element must be <xml>", offset: 0) }
        var fields = [String: String]()
        Self.flatten(xml.children, prefix: "", into: &fields)
        self.fields = fields
    }

    public static func parse(_ bytes: [UInt8]) throws -> InboundMessage { try InboundMessage(xml: StrictXML.parse(bytes)) }

    public subscript(_ key: String) -> String? { fields[key] }

    public var toUser: String { fields["ToUserName"] ?? "" }
    public var fromUser: String { fields["FromUserName"] ?? "" }
    public var createTime: String { fields["CreateTime"] ?? "" }
    public var msgType: String { fields["MsgType"] ?? "" }
    public var event: String { fields["Event"] ?? "" }
    public var eventKey: String { fields["EventKey"] ?? "" }
    /// `MsgId`, or `MsgID` as TEMPLATESENDJOBFINISH and MASSSENDJOBFINISH spell it.
    public var msgId: String? { fields["MsgId"] ?? fields["MsgID"] }
    public var unionId: String? { (fields["UnionId"] ?? fields["UnionID"]).flatMap { $0.isEmpty ? nil : $0 } }
    public var encrypt: String? { fields["Encrypt"] }

    public var kind: Kind {
        switch msgType {
        case "text", "image", "voice", "video", "shortvideo", "location", "link": return .message(msgType)
        case "event":
            if event == "change_external_contact" { return .externalContact(fields["ChangeType"] ?? "") }
            return Kind.knownEvents.contains(event) ? .event(event) : .unknown
        default: return .unknown
        }
    }

    public enum Kind: Sendable, Equatable {
        case message(String)
        case event(String)
        /// WeCom `change_external_contact` with its ChangeType.
        case externalContact(String)
        case unknown

        static let knownEvents: Set<String> = [
            "subscribe", "unsubscribe", "SCAN", "LOCATION", "CLICK", "VIEW", "TEMPLATESENDJOBFINISH", "MASSSENDJOBFINISH",
        ]
    }

    /// The interaction type recorded on the timeline and the inbound stream.
    public var interactionType: String {
        switch kind {
        case .message(let t): "message.\(t)"
        case .event(let e): "event.\(e)"
        case .externalContact(let c): "wecom.\(c.isEmpty ? "change_external_contact" : c)"
        case .unknown: "unknown.\(msgType.isEmpty ? "none" : msgType)\(event.isEmpty ? "" : ".\(event)")"
        }
    }

    /// The retry-dedup key: MsgId for messages; sender + CreateTime + Event + EventKey for events (plus
    /// the external contact and member for WeCom contact changes).
    public var dedupKey: String {
        if let id = msgId, !id.isEmpty { return "m:\(id)" }
        var parts = [fromUser, createTime, msgType, event, eventKey]
        if case .externalContact = kind { parts += [fields["ChangeType"] ?? "", fields["ExternalUserID"] ?? "", fields["UserID"] ?? ""] }
        return "e:" + parts.joined(separator: "|")
    }

    /// A scene from a QR code: `qrscene_X` on subscribe, `X` on SCAN; on WeCom, the `State` of the
    /// contact way (渠道活码) a customer was added through.
    public var scene: String? {
        switch kind {
        case .event("subscribe") where eventKey.hasPrefix("qrscene_"): String(eventKey.dropFirst("qrscene_".count))
        case .event("SCAN") where !eventKey.isEmpty: eventKey
        case .externalContact("add_external_contact"), .externalContact("add_half_external_contact"):
            (fields["State"] ?? "").isEmpty ? nil : fields["State"]
        default: nil
        }
    }

    private static func flatten(_ elements: [XMLElement], prefix: String, into fields: inout [String: String]) {
        var counts = [String: Int]()
        for e in elements { counts[e.name, default: 0] += 1 }
        var seen = [String: Int]()
        for e in elements {
            var key = prefix + e.name
            if counts[e.name, default: 0] > 1 {
                key += "[\(seen[e.name, default: 0])]"
                seen[e.name, default: 0] += 1
            }
            if e.children.isEmpty {
                fields[key] = e.text
            } else {
                flatten(e.children, prefix: key + ".", into: &fields)
            }
        }
    }
}
