/// An outbound HTTP request.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// Whole-transfer timeout, connect included.
    public var timeoutMs: Int

    public init(method: String = "GET", url: String, headers: [(String, String)] = [], body: [UInt8] = [], timeoutMs: Int = 10_000) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeoutMs = timeoutMs
    }
}

public struct HTTPResponse: Sendable {
    public let status: Int
    /// Headers of the final response (names as the server sent them).
    public let headers: [(String, String)]
    public let body: [UInt8]

    public init(status: Int, headers: [(String, String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public var text: String { String(decoding: body, as: UTF8.self) }

    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.0.lowercased() == wanted }?.1
    }
}

/// One message for an SMTP server: the envelope and the RFC 5322 bytes (see `MIMEMessage`).
public struct MailEnvelope: Sendable {
    public enum Security: String, Sendable {
        /// Plain SMTP (loopback relays and test sinks only).
        case none
        /// STARTTLS is required: the transfer fails rather than send in clear.
        case startTLS
        /// TLS from the first byte (`smtps://`, port 465).
        case implicitTLS
    }

    /// `smtp://host:port` or `smtps://host:port`.
    public var server: String
    public var security: Security
    public var username: String?
    public var password: String?
    /// MAIL FROM, a bare address.
    public var from: String
    /// RCPT TO, bare addresses.
    public var recipients: [String]
    public var message: [UInt8]
    public var timeoutMs: Int

    public init(
        server: String, security: Security = .startTLS, username: String? = nil, password: String? = nil, from: String, recipients: [String],
        message: [UInt8], timeoutMs: Int = 30_000
    ) {
        self.server = server
        self.security = security
        self.username = username
        self.password = password
        self.from = from
        self.recipients = recipients
        self.message = message
        self.timeoutMs = timeoutMs
    }
}

/// What the SMTP server answered to the end of DATA.
public struct MailReceipt: Sendable {
    /// The last SMTP reply code (250 on acceptance).
    public let replyCode: Int
}

public struct TransportError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable {
        /// DNS, connect, TLS or I/O failure; nothing or something may have reached the server.
        case network
        /// The transfer ran past its timeout.
        case timeout
        /// The server refused (SMTP: `protocolCode` holds its reply, 4xx transient, 5xx permanent).
        case refused
        /// The response was larger than the transport accepts.
        case tooLarge
        case cancelled
        case shutdown
    }

    public let kind: Kind
    /// libcurl's CURLcode.
    public let curlCode: Int
    /// The protocol's last reply code where there was one (HTTP status, SMTP reply).
    public let protocolCode: Int
    public let message: String
    /// The request (or part of it) went out before the failure, so the server may have acted on it: a
    /// timeout or broken connection after this point leaves the outcome unknown. False when nothing
    /// was sent (no connection, refused), so trying again cannot repeat anything.
    public let requestSent: Bool

    public init(kind: Kind, curlCode: Int, protocolCode: Int, message: String, requestSent: Bool = false) {
        self.kind = kind
        self.curlCode = curlCode
        self.protocolCode = protocolCode
        self.message = message
        self.requestSent = requestSent
    }

    public var description: String { "transfer failed (\(kind), curl \(curlCode)\(protocolCode > 0 ? ", reply \(protocolCode)" : "")): \(message)" }

    /// An SMTP server refused a recipient for good (550 mailbox unavailable, 551 not local, 553 name
    /// not allowed, answered to RCPT TO): a hard bounce at send time. Refusals at MAIL FROM or DATA
    /// (policy, content, the sender) are not about the recipient.
    public var isRecipientRefusal: Bool { kind == .refused && [550, 551, 553].contains(protocolCode) && message.contains("RCPT failed") }
}
