import Foundation
import GatewayCore
import HTTPTransport

/// What to send, before any adapter shapes it.
public struct OutboundPayload: Sendable {
    /// Our message id; also the provider-side dedup key where the API has one (WeChat `client_msg_id`).
    public var messageId: String
    /// openid, E.164 phone number or email address.
    public var to: String
    public var toName: String?
    /// The WeChat account (config id) the message goes out from.
    public var account: String?
    /// The provider's template id or code.
    public var template: String?
    public var subject: String?
    public var text: String?
    public var html: String?
    public var link: String?
    /// Template variables (`vars.*` in specs).
    public var variables: [String: JSONValue]
    /// Provider-shaped rich content (`content.*` in specs), see `OutboundMessage.content`.
    public var content: JSONValue?
    /// The conversation a reply answers (`reply.*` in specs): Douyin's `msg_id` and `conversation_id`
    /// of the customer's last message, and `account_open_id`, the enterprise account's own open_id.
    public var reply: [String: String]?

    public init(
        messageId: String, to: String, toName: String? = nil, account: String? = nil, template: String? = nil, subject: String? = nil,
        text: String? = nil, html: String? = nil, link: String? = nil, variables: [String: JSONValue] = [:], content: JSONValue? = nil
    ) {
        self.content = content
        self.messageId = messageId
        self.to = to
        self.toName = toName
        self.account = account
        self.template = template
        self.subject = subject
        self.text = text
        self.html = html
        self.link = link
        self.variables = variables
    }
}

/// Per-send values that are not part of the message: the clock, a nonce, the access token, and the
/// gateway URLs a provider should call back.
public struct RenderInputs: Sendable {
    public var nowMs: Int64
    public var nonce: String
    public var accessToken: String?
    public var receiptURL: String?
    public var unsubscribeURL: String?

    public init(nowMs: Int64, nonce: String, accessToken: String? = nil, receiptURL: String? = nil, unsubscribeURL: String? = nil) {
        self.nowMs = nowMs
        self.nonce = nonce
        self.accessToken = accessToken
        self.receiptURL = receiptURL
        self.unsubscribeURL = unsubscribeURL
    }
}

public enum RenderedRequest: Sendable {
    case http(HTTPRequest)
    case mail(MailEnvelope)

    /// A readable, stable rendering: the golden fixtures and the sandbox log show requests this way.
    public var transcript: String {
        switch self {
        case .http(let r):
            var out = "\(r.method) \(r.url)\n"
            for (name, value) in r.headers { out += "\(name): \(value)\n" }
            return out + "\n" + String(decoding: r.body, as: UTF8.self) + "\n"
        case .mail(let m):
            var out = "SMTP \(m.server) security=\(m.security.rawValue)\(m.username.map { " user=\($0)" } ?? "")\n"
            out += "MAIL FROM:<\(m.from)>\n"
            for r in m.recipients { out += "RCPT TO:<\(r)>\n" }
            return out + "\n" + String(decoding: m.message, as: UTF8.self)
        }
    }
}

extension ResolvedAdapter {
    /// The request this adapter would make for `payload`. Throws `RenderError` when the message lacks
    /// what the spec needs (a missing variable, no access token).
    public func render(_ payload: OutboundPayload, _ inputs: RenderInputs) throws -> RenderedRequest {
        let context = templateContext(payload, inputs)
        switch renders.kind {
        case .http(let http): return .http(try renderHTTP(http, context, inputs))
        case .smtp(let smtp): return .mail(try renderMail(smtp, payload, context, inputs))
        case .sandbox: throw RenderError.invalidValue("a sandbox cannot render another sandbox")
        }
    }

    func templateContext(_ p: OutboundPayload, _ inputs: RenderInputs) -> [String: Any] {
        var c: [String: Any] = [
            "message_id": p.messageId, "to": p.to, "settings": settings,
            "vars": p.variables.compactMapValues { $0.foundationValue },
            "now": Self.iso8601(ms: inputs.nowMs),
        ]
        let optional: [(String, String?)] = [
            ("to_name", p.toName), ("account", p.account), ("template", p.template), ("subject", p.subject), ("text", p.text),
            ("html", p.html), ("link", p.link), ("receipt_url", inputs.receiptURL), ("unsubscribe_url", inputs.unsubscribeURL),
        ]
        for (key, value) in optional { if let value { c[key] = value } }
        if let content = p.content?.foundationValue { c["content"] = content }
        if let reply = p.reply { c["reply"] = reply }
        return c
    }

    func renderHTTP(_ http: HTTPPart, _ context: [String: Any], _ inputs: RenderInputs) throws -> HTTPRequest {
        var url = try http.url.render(context)
        guard url.hasPrefix("https://") || url.hasPrefix("http://"),
            !url.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F })
        else { throw RenderError.invalidValue("the rendered URL is not a valid http(s) URL") }

        var query = [(String, String)]()
        for (key, template) in http.query {
            if let v = try template.render(context) { query.append((key, Self.formText(v))) }
        }
        var headers = [(String, String)]()
        for (name, template) in http.headers {
            let value = try template.render(context)
            guard !value.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" }) else {
                throw RenderError.invalidValue("header \(name) would contain a line break")
            }
            headers.append((name, value))
        }
        var fields = [(String, String)]()
        var body = [UInt8]()
        var contentType: String?
        if let b = http.body {
            let rendered = try b.fields.render(context) ?? .object([:])
            switch b.format {
            case .json:
                body = Array(rendered.text.utf8)
                contentType = "application/json; charset=utf-8"
            case .form:
                guard case .object(let members) = rendered else { throw RenderError.invalidValue("a form body must be a mapping") }
                fields = members.keys.sorted().map { ($0, Self.formText(members[$0]!)) }
                contentType = "application/x-www-form-urlencoded"
            }
        }

        switch http.auth {
        case .none: break
        case .bearer(let token): headers.append(("Authorization", "Bearer " + setting(token)))
        case .basic(let user, let password):
            headers.append(("Authorization", "Basic " + Data((setting(user) + ":" + setting(password)).utf8).base64EncodedString()))
        case .queryToken(let parameter, let token): query.append((parameter, setting(token)))
        case .wechatAccessToken:
            guard let token = inputs.accessToken, !token.isEmpty else { throw RenderError.invalidValue("no access token for this account") }
            query.insert(("access_token", token), at: 0)
        case .douyinAccessToken:
            guard let token = inputs.accessToken, !token.isEmpty else { throw RenderError.invalidValue("no access token for this account") }
            headers.append(("access-token", token))
        case .hmacSHA1SortedParams(let keyId, let secret):
            let signer = AlibabaRPCSigner(accessKeyId: setting(keyId), accessKeySecret: setting(secret))
            if http.body != nil {
                fields = signer.sign(method: http.method, parameters: fields, nowMs: inputs.nowMs, nonce: inputs.nonce)
            } else {
                query = signer.sign(method: http.method, parameters: query, nowMs: inputs.nowMs, nonce: inputs.nonce)
            }
        }
        if http.body?.format == .form { body = Array(Self.formEncode(fields).utf8) }
        if !query.isEmpty { url += (url.contains("?") ? "&" : "?") + Self.formEncode(query) }
        if let contentType, !headers.contains(where: { $0.0.lowercased() == "content-type" }) {
            headers.insert(("Content-Type", contentType), at: 0)
        }
        return HTTPRequest(method: http.method, url: url, headers: headers, body: body, timeoutMs: http.timeoutMs)
    }

    private func renderMail(_ smtp: SMTPPart, _ p: OutboundPayload, _ context: [String: Any], _ inputs: RenderInputs) throws -> MailEnvelope {
        let security: MailEnvelope.Security
        switch try smtp.security.render(context) {
        case "none": security = .none
        case "starttls": security = .startTLS
        case "tls": security = .implicitTLS
        case let other: throw RenderError.invalidValue("smtp.security must be none, starttls or tls, got \(other)")
        }
        let from = try smtp.from.render(context)
        func optional(_ t: TextTemplate?) throws -> String? {
            guard let t, let s = try? t.render(context), !s.isEmpty else { return nil }
            return s
        }
        let domain = from.split(separator: "@").last.map(String.init) ?? "localhost"
        var message = MIMEMessage(
            from: MailAddress(from, name: try optional(smtp.fromName)), to: [MailAddress(p.to, name: p.toName)],
            subject: try smtp.subject.render(context), text: try smtp.text.render(context), html: try optional(smtp.html),
            replyTo: try optional(smtp.replyTo).map { MailAddress($0) },
            headers: [("X-SCRM-Message-Id", p.messageId)], messageId: "\(p.messageId)@\(domain)", dateMs: inputs.nowMs)
        if let u = smtp.unsubscribeURL {
            message.addUnsubscribe(url: try u.render(context), mailto: try optional(smtp.unsubscribeMailto))
        }
        let bytes: [UInt8]
        do { bytes = try message.render(boundarySeed: inputs.nonce) } catch { throw RenderError.invalidValue("\(error)") }
        let user = smtp.username.map(setting).flatMap { $0.isEmpty ? nil : $0 }
        return MailEnvelope(
            server: try smtp.server.render(context), security: security, username: user,
            password: user == nil ? nil : smtp.password.map(setting), from: from, recipients: [p.to], message: bytes,
            timeoutMs: smtp.timeoutMs)
    }

    private func setting(_ name: String) -> String { settings[name] ?? "" }

    static func formText(_ v: JSONValue) -> String { v.scalarText ?? (v == .null ? "" : v.text) }

    /// `application/x-www-form-urlencoded` with RFC 3986 escaping (space as %20): every provider
    /// accepts it, and Alibaba's signature requires it.
    static func formEncode(_ pairs: [(String, String)]) -> String { FormEncoding.encode(pairs) }

    static func percentEncode(_ s: String) -> String { FormEncoding.percentEncode(s) }

    /// `2026-11-23T08:00:00Z` (UTC, whole seconds), as Alibaba's Timestamp wants it.
    static func iso8601(ms: Int64) -> String {
        var t = time_t(ms / 1000)
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ v: Int32) -> String { String(v).leftPadded(to: 2) }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }
}

extension String {
    func leftPadded(to n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
