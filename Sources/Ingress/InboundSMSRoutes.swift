import GatewayCore
import GatewayCrypto
import HTTPAPI
import HTTPTypes
import Hummingbird
import Metrics
import NIOCore
import RedisClient
import Store

/// `POST /webhooks/inbound/{adapter}`: replies to our SMS, in Twilio's signed incoming-message shape
/// (form fields From, To, Body, MessageSid; `X-Twilio-Signature` over the URL and the fields). A
/// reply of STOP, UNSUBSCRIBE, TD, 退订... opts the number (and the customer holding it) out of SMS;
/// START / 订阅 opts it back in. Answered with TwiML: empty where Twilio confirms by itself, else
/// with our confirmation. Unverifiable requests get 403 and change nothing.
public struct InboundSMSRoutes: Sendable {
    /// adapter -> (auth token, the URL Twilio signs: the one configured in its console).
    let verifiers: [String: (token: String, url: String)]
    let customers: CustomerStore
    let replays: ReplayGuard
    let maxBodyBytes: Int
    let clock: @Sendable () -> Int64

    public init(
        verifiers: [String: (token: String, url: String)], customers: CustomerStore, maxBodyBytes: Int, windowSeconds: Int,
        clock: @escaping @Sendable () -> Int64
    ) {
        self.verifiers = verifiers
        self.customers = customers
        self.replays = ReplayGuard(redis: customers.redis, ttlSeconds: 2 * windowSeconds)
        self.maxBodyBytes = maxBodyBytes
        self.clock = clock
    }

    public func register<Context: RequestContext>(on router: DeclaredRoutes<Context>) {
        router.post("/webhooks/inbound/:adapter", .public) { request, context -> Response in
            try await rejecting {
                let name = try context.parameters.require("adapter")
                guard let (token, url) = verifiers[name] else { throw APIError.notFound("inbound endpoint") }
                let body: ByteBuffer
                do { body = try await request.body.collect(upTo: maxBodyBytes) } catch is NIOTooManyBytesError {
                    throw APIError(.contentTooLarge, "body_too_large", "body exceeds \(maxBodyBytes) bytes")
                }
                let pairs = FormEncoding.pairs(String(buffer: body))
                guard let sig = request.headers[HTTPField.Name("X-Twilio-Signature")!],
                    ConstantTime.equals(sig, ReceiptFormats.twilioSignature(url: url, pairs: pairs, authToken: token))
                else { throw APIError(.forbidden, "bad_signature", "signature does not match") }
                let form = Dictionary(pairs, uniquingKeysWith: { _, last in last })
                guard let from = form["From"], let phone = try? IdentityInput.e164(from) else {
                    throw APIError.badRequest("From must be a phone number", code: "invalid_message")
                }
                var reply: String?
                do {
                    let applied = try await replays.once(scope: "inbound:\(name)", signature: sig) { () async throws -> String? in
                        switch SMSReplyKeywords.intent(form["Body"] ?? "") {
                        case .optOut(let confirmed)?:
                            try await customers.recordOptOut(channel: "sms", address: phone, state: "opted_out", nowMs: clock())
                            Counter(label: "scrm_sms_replies_total", dimensions: [("intent", "opt_out")]).increment()
                            return confirmed ? nil : "您已退订，将不再收到营销短信。回复“订阅”可恢复。You are unsubscribed; reply START to resubscribe."
                        case .optIn(let confirmed)?:
                            try await customers.recordOptIn(sms: phone, source: "sms-reply:\(name)", nowMs: clock())
                            Counter(label: "scrm_sms_replies_total", dimensions: [("intent", "opt_in")]).increment()
                            return confirmed ? nil : "您已恢复订阅。You are subscribed again; reply TD to unsubscribe."
                        case nil:
                            Counter(label: "scrm_sms_replies_total", dimensions: [("intent", "other")]).increment()
                            return nil
                        }
                    }
                    guard let answer = applied else { throw APIError(.forbidden, "replayed", "this signed message was already applied") }
                    reply = answer
                } catch is RedisError {
                    throw APIError.unavailable
                }
                let twiml = reply.map { "<Response><Message>\(XMLText.escape($0))</Message></Response>" } ?? "<Response/>"
                return Response(status: .ok, headers: [.contentType: "text/xml"], body: .init(byteBuffer: ByteBuffer(string: twiml)))
            }
        }
    }
}

/// Text for an XML or HTML element or attribute value.
enum XMLText {
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }
}
