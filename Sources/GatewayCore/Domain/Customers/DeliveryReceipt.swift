import Foundation
import GatewayCrypto

/// What a provider reported about a message after accepting it.
public struct DeliveryReceipt: Sendable, Equatable {
    public enum Lookup: Sendable, Equatable {
        case messageId(String)
        /// The provider's id, as the adapter (by the spec it renders) stored it.
        case providerId(adapter: String, id: String)
    }

    public enum Outcome: Sendable, Equatable {
        case delivered
        case failed(reason: String)
        /// Nothing changes on the message (queued, sent, opened...).
        case none
    }

    public struct OptOut: Sendable, Equatable {
        public let channel: String
        public let address: String
        /// unsubscribed, bounced, complained, opted_out
        public let state: String
    }

    /// The recipient opened the message or clicked a link in it: an interaction of its customer
    /// (`email.open`, `email.click` on stream:inbound, scored by the rules).
    public struct Engagement: Sendable, Equatable {
        public let kind: String
        public let url: String?
    }

    public var lookup: Lookup?
    public var outcome: Outcome
    public var optOut: OptOut?
    public var engagement: Engagement?

    public init(lookup: Lookup?, outcome: Outcome, optOut: OptOut? = nil, engagement: Engagement? = nil) {
        self.lookup = lookup
        self.outcome = outcome
        self.optOut = optOut
        self.engagement = engagement
    }
}

/// Receipt formats: WeChat's TEMPLATESENDJOBFINISH event, Twilio's status callback, SendGrid's Event
/// Webhook; and how each provider signs its callbacks.
public enum ReceiptFormats {
    /// TEMPLATESENDJOBFINISH: `Status` is `success`, `failed:user block` or `failed: system failed`.
    public static func wechatTemplateJob(_ m: InboundMessage, adapter: String = "wechat-template") -> DeliveryReceipt? {
        guard case .event("TEMPLATESENDJOBFINISH") = m.kind, let id = m.msgId else { return nil }
        let status = m["Status"] ?? ""
        let outcome: DeliveryReceipt.Outcome
        if status == "success" {
            outcome = .delivered
        } else if status.contains("user block") {
            outcome = .failed(reason: "user_block")
        } else {
            outcome = .failed(reason: "wechat_" + status.replacingOccurrences(of: "failed:", with: "").trimmingCharacters(in: .whitespaces).replacingOccurrences(of: " ", with: "_"))
        }
        return DeliveryReceipt(lookup: .providerId(adapter: adapter, id: id), outcome: outcome)
    }

    /// Twilio's status callback (form fields `MessageSid`, `MessageStatus`, `ErrorCode`, `To`).
    /// Error 21610 means the recipient replied STOP: an SMS opt-out.
    public static func twilio(_ f: [String: String], adapter: String) -> DeliveryReceipt? {
        guard let sid = f["MessageSid"] ?? f["SmsSid"], let status = f["MessageStatus"] ?? f["SmsStatus"] else { return nil }
        let code = f["ErrorCode"].flatMap { $0.isEmpty ? nil : $0 }
        let outcome: DeliveryReceipt.Outcome
        switch status {
        case "delivered": outcome = .delivered
        case "undelivered", "failed": outcome = .failed(reason: "twilio_\(status)" + (code.map { "_\($0)" } ?? ""))
        default: outcome = .none
        }
        let optOut = code == "21610" ? f["To"].map { DeliveryReceipt.OptOut(channel: "sms", address: $0, state: "opted_out") } : nil
        return DeliveryReceipt(lookup: .providerId(adapter: adapter, id: sid), outcome: outcome, optOut: optOut)
    }

    /// SendGrid's Event Webhook: a JSON array of events. Our message id rides along as the custom arg
    /// `scrm_message_id`; `sg_message_id` starts with the X-Message-Id the send returned.
    public static func sendGrid(_ body: [UInt8], adapter: String) -> [DeliveryReceipt]? {
        guard case .array(let events)? = JSONValue.parse(body) else { return nil }
        return events.compactMap { e in
            guard case .object(let o) = e, let event = o["event"]?.scalarText else { return nil }
            var lookup: DeliveryReceipt.Lookup?
            if let id = o["scrm_message_id"]?.scalarText {
                lookup = .messageId(id)
            } else if let sg = o["sg_message_id"]?.scalarText, let prefix = sg.split(separator: ".").first {
                lookup = .providerId(adapter: adapter, id: String(prefix))
            }
            let email = o["email"]?.scalarText?.lowercased()
            func optOut(_ state: String) -> DeliveryReceipt.OptOut? { email.map { DeliveryReceipt.OptOut(channel: "email", address: $0, state: state) } }
            switch event {
            case "delivered": return DeliveryReceipt(lookup: lookup, outcome: .delivered)
            case "bounce":
                // type "blocked" is a temporary refusal by the receiving server; "bounce" is a hard bounce.
                let hard = o["type"]?.scalarText != "blocked"
                return DeliveryReceipt(lookup: lookup, outcome: .failed(reason: hard ? "bounce" : "blocked"), optOut: hard ? optOut("bounced") : nil)
            case "dropped":
                return DeliveryReceipt(lookup: lookup, outcome: .failed(reason: "dropped: " + (o["reason"]?.scalarText ?? "")))
            case "spamreport": return DeliveryReceipt(lookup: lookup, outcome: .none, optOut: optOut("complained"))
            case "unsubscribe", "group_unsubscribe": return DeliveryReceipt(lookup: lookup, outcome: .none, optOut: optOut("unsubscribed"))
            case "open": return DeliveryReceipt(lookup: lookup, outcome: .none, engagement: .init(kind: "open", url: nil))
            case "click": return DeliveryReceipt(lookup: lookup, outcome: .none, engagement: .init(kind: "click", url: o["url"]?.scalarText))
            default: return DeliveryReceipt(lookup: lookup, outcome: .none)
            }
        }
    }

    /// `X-Twilio-Signature`: base64(HMAC-SHA1(auth token, the full callback URL + every POST parameter's
    /// name and value, sorted by name)). A repeated parameter contributes each of its distinct values,
    /// sorted, as Twilio's own validators compute it.
    public static func twilioSignature(url: String, pairs: [(name: String, value: String)], authToken: String) -> String {
        var values = [String: Set<String>]()
        for (name, value) in pairs { values[name, default: []].insert(value) }
        var data = url
        for name in values.keys.sorted() { for value in values[name]!.sorted() { data += name + value } }
        return Data(HMAC.sha1(key: Array(authToken.utf8), data: Array(data.utf8))).base64EncodedString()
    }

    /// The same for parameters known to be single-valued.
    public static func twilioSignature(url: String, parameters: [String: String], authToken: String) -> String {
        twilioSignature(url: url, pairs: parameters.map { ($0.key, $0.value) }, authToken: authToken)
    }

    /// SendGrid's signed Event Webhook: ECDSA P-256/SHA-256 over timestamp + raw body; the key is the
    /// base64 DER public key from SendGrid's settings, the signature the base64 DER header value.
    public static func sendGridSignatureValid(publicKeyBase64: String, signatureBase64: String, timestamp: String, body: [UInt8]) -> Bool {
        guard let key = Data(base64Encoded: publicKeyBase64), let sig = Data(base64Encoded: signatureBase64) else { return false }
        return ECDSA.verifyP256SHA256(publicKey: Array(key), message: Array(timestamp.utf8) + body, signature: Array(sig))
    }
}
