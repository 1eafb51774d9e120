import Foundation

/// One way to recognise a customer. Stored as `type:account:value` (account-scoped) or `type:value`,
/// which is also the identity index key's suffix (`idx:` + storage form).
public struct Identity: Sendable, Hashable {
    public enum Kind: String, Sendable, CaseIterable {
        case openid, unionid, phone, email
        /// WeCom external contact id (`ExternalUserID`), scoped to the WeCom account.
        case wecom
        /// A CRM's record id for the customer, scoped to the CRM adapter (`crm:crm-hubspot:901`); stored
        /// back by the CRM sync so the CRM's webhooks find the customer.
        case crm
        /// The brand's own id for the customer (an import's `external_id` column).
        case external
        /// A Douyin user's `open_id` for one Douyin enterprise account (`douyin:<account>:<open_id>`).
        case douyin

        public var isAccountScoped: Bool { self == .openid || self == .wecom || self == .crm || self == .douyin }
    }

    public let kind: Kind
    public let account: String?
    public let value: String

    public init(kind: Kind, account: String? = nil, value: String) {
        self.kind = kind
        self.account = account
        self.value = value
    }

    public var storageForm: String { account.map { "\(kind.rawValue):\($0):\(value)" } ?? "\(kind.rawValue):\(value)" }

    public init?(storageForm s: String) {
        let parts = s.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, let kind = Kind(rawValue: String(parts[0])) else { return nil }
        if kind.isAccountScoped {
            let rest = parts[1].split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            guard rest.count == 2 else { return nil }
            self.init(kind: kind, account: String(rest[0]), value: String(rest[1]))
        } else {
            self.init(kind: kind, value: String(parts[1]))
        }
    }

    public var json: String {
        var pairs = [("type", JSONText.quote(kind.rawValue))]
        if let account { pairs.append(("account", JSONText.quote(account))) }
        pairs.append(("value", JSONText.quote(value)))
        return JSONText.object(pairs)
    }
}

/// Validation and normalisation of identities that arrive through the admin API.
public enum IdentityInput {
    public struct Invalid: Error, Equatable {
        public let message: String
    }

    /// Builds an identity from an API payload, normalising phone (E.164) and email (lower case).
    public static func make(type: String, value: String, account: String?) throws -> Identity {
        guard let kind = Identity.Kind(rawValue: type) else {
            throw Invalid(message: "type must be one of phone, email, unionid, openid, wecom, douyin, crm, external")
        }
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        switch kind {
        case .phone: return Identity(kind: .phone, value: try e164(trimmed))
        case .email: return Identity(kind: .email, value: try email(trimmed))
        case .unionid, .external:
            try token(trimmed, what: type)
            return Identity(kind: kind, value: trimmed)
        case .openid, .wecom, .crm, .douyin:
            guard let account, !account.isEmpty else { throw Invalid(message: "\(type) needs an account (crm: the CRM adapter)") }
            try token(trimmed, what: type)
            return Identity(kind: kind, account: account, value: trimmed)
        }
    }

    /// `+` and 8 to 15 digits, the first not 0. Spaces, dashes, dots and parentheses are removed.
    public static func e164(_ raw: String) throws -> String {
        let cleaned = raw.filter { !" -.()".contains($0) }
        let digits = cleaned.dropFirst()
        guard cleaned.hasPrefix("+"), (8...15).contains(digits.count), digits.allSatisfy({ $0.isASCII && $0.isNumber }),
            digits.first != "0"
        else { throw Invalid(message: "phone must be E.164, e.g. +8613800138000") }
        return cleaned
    }

    public static func email(_ raw: String) throws -> String {
        let lower = raw.lowercased()
        let parts = lower.split(separator: "@", omittingEmptySubsequences: false)
        guard lower.utf8.count <= 254, parts.count == 2, !parts[0].isEmpty, parts[1].contains("."),
            !parts[1].hasPrefix("."), !parts[1].hasSuffix("."), !lower.contains(where: { $0.isWhitespace || $0 == ":" })
        else { throw Invalid(message: "email is not a valid address") }
        return lower
    }

    static func token(_ s: String, what: String) throws {
        guard (1...128).contains(s.utf8.count), s.utf8.allSatisfy({ isTokenByte($0) }) else {
            throw Invalid(message: "\(what) must be 1 to 128 characters of letters, digits, - and _")
        }
    }

    public static func isTokenByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x5F
    }
}
