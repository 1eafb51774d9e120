import Foundation
import GatewayCrypto

/// A mailbox for a header: an address and an optional display name (any Unicode).
public struct MailAddress: Sendable, Equatable {
    public var name: String?
    public var address: String

    public init(_ address: String, name: String? = nil) {
        self.address = address
        self.name = name
    }
}

public enum MIMEError: Error, Equatable, CustomStringConvertible {
    /// A header value or address held CR or LF, which would let it inject headers.
    case lineBreakInHeader(String)
    case invalidAddress(String)

    public var description: String {
        switch self {
        case .lineBreakInHeader(let name): "header \(name) contains a line break"
        case .invalidAddress(let a): "not a valid address: \(a)"
        }
    }
}

/// An RFC 5322 message with a text part and, optionally, an HTML alternative. Non-ASCII headers are
/// RFC 2047 encoded words, bodies are UTF-8 in base64, lines end in CRLF.
public struct MIMEMessage: Sendable {
    public var from: MailAddress
    public var to: [MailAddress]
    public var replyTo: MailAddress?
    public var subject: String
    public var text: String
    public var html: String?
    /// Further headers in order, e.g. `List-Unsubscribe`.
    public var headers: [(String, String)]
    /// Without angle brackets; generated from the sender's domain when nil.
    public var messageId: String?
    public var dateMs: Int64

    public init(
        from: MailAddress, to: [MailAddress], subject: String, text: String, html: String? = nil, replyTo: MailAddress? = nil,
        headers: [(String, String)] = [], messageId: String? = nil, dateMs: Int64
    ) {
        self.from = from
        self.to = to
        self.subject = subject
        self.text = text
        self.html = html
        self.replyTo = replyTo
        self.headers = headers
        self.messageId = messageId
        self.dateMs = dateMs
    }

    /// Adds RFC 2369 `List-Unsubscribe` (the https link first, then a mailto if given) and RFC 8058
    /// one-click `List-Unsubscribe-Post`.
    public mutating func addUnsubscribe(url: String, mailto: String? = nil) {
        var targets = ["<\(url)>"]
        if let mailto { targets.append("<mailto:\(mailto)>") }
        headers.append(("List-Unsubscribe", targets.joined(separator: ", ")))
        headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    }

    /// The message bytes, ready for SMTP DATA.
    public func render(boundarySeed: String = SecureRandom.alphanumeric(16)) throws -> [UInt8] {
        var out = ""
        // `folded`: the value is built here from inputs already checked, and may hold our own folding.
        func header(_ name: String, _ value: String, folded: Bool = false) throws {
            guard folded || !value.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" }) else { throw MIMEError.lineBreakInHeader(name) }
            out += name + ": " + value + "\r\n"
        }
        try header("From", try Self.mailbox(from), folded: true)
        try header("To", try to.map(Self.mailbox).joined(separator: ",\r\n "), folded: true)
        if let replyTo { try header("Reply-To", try Self.mailbox(replyTo), folded: true) }
        guard !subject.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" }) else { throw MIMEError.lineBreakInHeader("Subject") }
        try header("Subject", Self.encodedWords(subject), folded: true)
        try header("Date", Self.rfc5322Date(ms: dateMs))
        let domain = from.address.split(separator: "@").last.map(String.init) ?? "localhost"
        try header("Message-ID", "<\(messageId ?? "\(dateMs).\(SecureRandom.alphanumeric(12))@\(domain)")>")
        try header("MIME-Version", "1.0")
        for (name, value) in headers { try header(name, value) }
        let textPart = "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" + Self.base64Lines(text)
        guard let html else {
            return Array((out + textPart).utf8)
        }
        let boundary = "=_scrm_" + boundarySeed
        out += "Content-Type: multipart/alternative; boundary=\"\(boundary)\"\r\n\r\n"
        out += "--\(boundary)\r\n" + textPart
        out += "--\(boundary)\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" + Self.base64Lines(html)
        out += "--\(boundary)--\r\n"
        return Array(out.utf8)
    }

    static func mailbox(_ a: MailAddress) throws -> String {
        let address = a.address
        guard !address.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "<" || $0 == ">" || $0 == " " || $0 == "," }),
            address.split(separator: "@", omittingEmptySubsequences: false).count == 2
        else { throw MIMEError.invalidAddress(address) }
        guard let name = a.name, !name.isEmpty else { return address }
        if name.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" }) { throw MIMEError.lineBreakInHeader("display name") }
        return "\(encodedWords(name, quoteIfASCII: true)) <\(address)>"
    }

    /// RFC 2047 `=?UTF-8?B?...?=` words of at most 75 characters, split on character boundaries;
    /// plain ASCII stays as it is.
    static func encodedWords(_ s: String, quoteIfASCII: Bool = false) -> String {
        if s.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
            guard quoteIfASCII, s.contains(where: { "()<>[]:;@\\,.\"".contains($0) }) else { return s }
            return "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        var words: [String] = []
        var chunk: [UInt8] = []
        for ch in s {
            let bytes = Array(String(ch).utf8)
            // 45 bytes of UTF-8 -> 60 base64 characters + 12 for the wrapper: under 75.
            if chunk.count + bytes.count > 45 {
                words.append("=?UTF-8?B?" + Data(chunk).base64EncodedString() + "?=")
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty { words.append("=?UTF-8?B?" + Data(chunk).base64EncodedString() + "?=") }
        return words.joined(separator: "\r\n ")
    }

    static func base64Lines(_ s: String) -> String {
        let encoded = Data(s.utf8).base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
        return encoded.isEmpty ? "\r\n" : encoded + "\r\n"
    }

    /// `Sun, 22 Nov 2026 08:05:09 +0000`.
    static func rfc5322Date(ms: Int64) -> String {
        let seconds = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secOfDay = seconds - days * 86_400
        let (year, month, day) = CivilDate.from(daysSince1970: days)
        let weekday = ((days % 7) + 7 + 4) % 7  // 1970-01-01 was a Thursday
        let names = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(names[Int(weekday)]), \(two(day)) \(months[Int(month - 1)]) \(year) \(two(secOfDay / 3600)):\(two(secOfDay % 3600 / 60)):\(two(secOfDay % 60)) +0000"
    }
}
