/// What a route needs from its caller. Every route declares one (`DeclaredRoutes`); a role is a set
/// of them (`Role.permissions`). `public` routes check their own proof (a platform signature, a signed
/// link) or none (health).
public enum Permission: String, Sendable, CaseIterable, Codable {
    case `public`
    /// Any signed-in caller: its own session.
    case session
    case customersRead = "customers.read"
    case customersWrite = "customers.write"
    case consentWrite = "consent.write"
    case identitiesWrite = "identities.write"
    /// Merge two customers on a verified identity from the events API.
    case identitiesMerge = "identities.merge"
    case customersExport = "customers.export"
    case customersErase = "customers.erase"
    case eventsWrite = "events.write"
    case tagsRead = "tags.read"
    case tagsWrite = "tags.write"
    case audiencesRead = "audiences.read"
    /// Save and delete segments.
    case audiencesWrite = "audiences.write"
    case campaignsRead = "campaigns.read"
    case campaignsWrite = "campaigns.write"
    case journeysRead = "journeys.read"
    case journeysWrite = "journeys.write"
    case importsRead = "imports.read"
    case importsWrite = "imports.write"
    case messagesRead = "messages.read"
    /// Send to a known customer, on the marketing lane.
    case messagesSend = "messages.send"
    /// Send to an arbitrary address (`to`), or on the transactional lane (skips unsubscribes and quiet hours).
    case messagesSendAny = "messages.sendAny"
    case deadLettersWrite = "deadletters.write"
    case operationsRead = "operations.read"
    case crmRead = "crm.read"
    case crmWrite = "crm.write"
    case scoringWrite = "scoring.write"
    case followersWrite = "followers.write"
    case mergesRead = "merges.read"
    case mergesWrite = "merges.write"
    case keysManage = "keys.manage"
    case operatorsManage = "operators.manage"
    case auditRead = "audit.read"
    /// The WeChat surfaces of an account: QR codes and their report, reply rules, the menu.
    case channelsRead = "channels.read"
    case channelsWrite = "channels.write"

    /// Whether a call with it changes something (or hands data out) and so writes an audit entry.
    public var isAudited: Bool {
        switch self {
        case .public, .session, .customersRead, .tagsRead, .audiencesRead, .campaignsRead, .journeysRead, .importsRead, .messagesRead,
            .operationsRead, .crmRead, .mergesRead, .auditRead, .channelsRead:
            false
        default: true
        }
    }

    /// Permissions an admin may add to a key or operator beyond its role (`grants`).
    public static let grantable: Set<Permission> = [.customersExport]
}

/// The roles of API keys and operators.
public enum Role: String, Sendable, CaseIterable, Codable {
    case admin, marketer, analyst, integration, support

    public var permissions: Set<Permission> {
        switch self {
        case .admin: Set(Permission.allCases)
        case .marketer:
            [
                .session, .customersRead, .customersWrite, .consentWrite, .tagsRead, .tagsWrite, .audiencesRead, .audiencesWrite,
                .campaignsRead, .campaignsWrite, .journeysRead, .journeysWrite, .importsRead, .importsWrite, .messagesRead, .messagesSend, .operationsRead,
                .crmRead, .mergesRead, .channelsRead, .channelsWrite,
            ]
        case .analyst:
            [
                .session, .customersRead, .tagsRead, .audiencesRead, .campaignsRead, .journeysRead, .importsRead, .messagesRead, .operationsRead, .crmRead,
                .mergesRead, .channelsRead,
            ]
        case .integration: [.session, .eventsWrite, .customersRead, .customersWrite, .consentWrite, .identitiesWrite, .identitiesMerge]
        case .support: [.session, .customersRead, .consentWrite]
        }
    }
}

/// Who is calling: an API key, an operator's session, or the bootstrap admin token.
public struct Principal: Sendable, Equatable {
    public enum Kind: String, Sendable { case key, `operator`, bootstrap }
    public let kind: Kind
    /// Key id, operator name, or `bootstrap`.
    public let id: String
    public let role: Role
    public let grants: Set<Permission>

    public init(kind: Kind, id: String, role: Role, grants: Set<Permission> = []) {
        self.kind = kind
        self.id = id
        self.role = role
        self.grants = grants
    }

    public static let bootstrap = Principal(kind: .bootstrap, id: "bootstrap", role: .admin)

    public func allows(_ permission: Permission) -> Bool {
        permission == .public || role.permissions.contains(permission) || grants.contains(permission)
    }

    /// Everything it may do, in declaration order (for `GET /me` and the session).
    public var permissions: [Permission] { Permission.allCases.filter { $0 != .public && allows($0) } }

    /// `key:<id>`, `operator:<name>` or `bootstrap`: how the audit log names the actor.
    public var actor: String { kind == .bootstrap ? id : "\(kind.rawValue):\(id)" }

    /// The caller of the request being handled, set by the admin API's authentication.
    @TaskLocal public static var current: Principal?
}
