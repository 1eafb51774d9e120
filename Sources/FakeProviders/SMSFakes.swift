import Foundation
import GatewayCrypto
import Hummingbird
import NIOConcurrencyHelpers

/// Twilio's Messages API as a loopback fake: HTTP basic auth with the account SID and auth token,
/// form-encoded To/From/Body, 201 with the Message resource, and Twilio's error shape
/// `{"code","message","more_info","status"}` (20003 bad credentials, 21211 bad To, 21602 no body,
/// 21603 no From, 20429 over `perSecond`). `GET .../Messages.json` lists the messages it took, newest
/// first, filtered by `To` and `From`, `PageSize` 1 to 1,000 (default 50), each with Twilio's fields
/// (`sid`, `to`, `from`, `body`, `status`, `date_created` in RFC 2822).
public final class TwilioFake: Sendable {
    public let ledger: FakeLedger
    let accountSid: String
    let authToken: String
    private let window = NIOLockedValueBox<(second: Int64, count: Int)>((0, 0))
    private let perSecond: Int?
    private let delayMs: Int
    /// The Authorization header Twilio expects (computed once: the fake shares the machine with what it measures).
    private let expectedAuth: String

    /// `delayMs`: how long each accepted request takes (a provider's own latency).
    public init(ledger: FakeLedger, accountSid: String, authToken: String, perSecond: Int? = nil, delayMs: Int = 0) {
        self.ledger = ledger
        self.accountSid = accountSid
        self.authToken = authToken
        self.perSecond = perSecond
        self.delayMs = delayMs
        expectedAuth = "Basic " + Data("\(accountSid):\(authToken)".utf8).base64EncodedString()
    }

    /// `+` then 2 to 15 digits, the first not 0 (E.164).
    static func isE164(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard (3...16).contains(u.count), u[0] == UInt8(ascii: "+"), u[1] >= UInt8(ascii: "1"), u[1] <= UInt8(ascii: "9") else { return false }
        return u.dropFirst(2).allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    public func add(to router: Router<BasicRequestContext>) {
        router.post("/2010-04-01/Accounts/:sid/Messages.json") { request, context -> Response in
            let body = try await request.body.collect(upTo: 1 << 16)
            if let forced = self.ledger.begin("twilio.messages") { return forced.response }
            guard let auth = request.headers[.authorization], ConstantTime.equals(auth, self.expectedAuth), context.parameters.get("sid") == self.accountSid else {
                return Self.error(20003, "Authenticate", status: 401)
            }
            if let limit = self.perSecond {
                let second = Int64(Date().timeIntervalSince1970)
                let over = self.window.withLockedValue { w in
                    if w.second != second { w = (second, 0) }
                    w.count += 1
                    return w.count > limit
                }
                if over { return Self.error(20429, "Too Many Requests", status: 429) }
            }
            if self.delayMs > 0 { try await Task.sleep(for: .milliseconds(self.delayMs)) }
            let f = formFields(String(buffer: body))
            guard let to = f["To"], Self.isE164(to) else {
                return Self.error(21211, "The 'To' number \(f["To"] ?? "") is not a valid phone number.", status: 400)
            }
            guard f["From"] != nil || f["MessagingServiceSid"] != nil else { return Self.error(21603, "A 'From' phone number is required.", status: 400) }
            guard let text = f["Body"], !text.isEmpty else { return Self.error(21602, "Message body is required.", status: 400) }
            if let refused = self.ledger.refusal("twilio.messages", to: to) { return refused.response }
            let sid = self.ledger.deliver("twilio", to: to, messageId: nil, body: f, makeId: Self.sid)
            await self.ledger.holdWhileHanging()
            // An Encodable resource: the fake shares the machine with what the benchmarks measure.
            let message = CreatedMessage(sid: sid, account_sid: self.accountSid, to: to, from: f["From"] ?? "", body: text)
            return FakeAnswer(status: 201, json: String(decoding: (try? JSONEncoder().encode(message)) ?? Data("{}".utf8), as: UTF8.self)).response
        }
        router.get("/2010-04-01/Accounts/:sid/Messages.json") { request, context -> Response in self.list(request, sid: context.parameters.get("sid")) }
    }

    /// Twilio's message list (the account's outbound messages), as the gateway asks it after a send
    /// left in doubt.
    func list(_ request: Request, sid: String?) -> Response {
        if let forced = ledger.begin("twilio.messages.list") { return forced.response }
        guard let auth = request.headers[.authorization], ConstantTime.equals(auth, expectedAuth), sid == accountSid else {
            return Self.error(20003, "Authenticate", status: 401)
        }
        let q = request.uri.queryParameters
        let to = q.get("To").map { String($0) }, from = q.get("From").map { String($0) }
        let size = min(max(q.get("PageSize").flatMap { Int($0) } ?? 50, 1), 1_000)
        let rfc = DateFormatter()
        rfc.locale = Locale(identifier: "en_US_POSIX")
        rfc.timeZone = TimeZone(identifier: "UTC")
        rfc.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        let taken = ledger.deliveries("twilio").filter { d in (to == nil || d.to == to) && (from == nil || d.body["From"] == from) }
            .sorted { $0.atMs > $1.atMs }.prefix(size)
        let messages: [[String: Any]] = taken.map { d in
            let at = rfc.string(from: Date(timeIntervalSince1970: Double(d.atMs) / 1000))
            return [
                "sid": d.providerId, "account_sid": accountSid, "to": d.to, "from": d.body["From"] ?? "", "body": d.body["Body"] ?? "", "status": "sent",
                "date_created": at, "date_updated": at, "date_sent": at, "direction": "outbound-api", "num_segments": "1", "api_version": "2010-04-01",
                "error_code": NSNull(), "error_message": NSNull(), "price": NSNull(),
                "uri": "/2010-04-01/Accounts/\(accountSid)/Messages/\(d.providerId).json",
            ]
        }
        let uri = "/2010-04-01/Accounts/\(accountSid)/Messages.json?PageSize=\(size)&Page=0"
        return jsonResponse([
            "messages": messages, "page": 0, "page_size": size, "start": 0, "end": max(0, messages.count - 1), "uri": uri, "first_page_uri": uri,
            "next_page_uri": NSNull(), "previous_page_uri": NSNull(),
        ])
    }

    /// `SM` and 32 hex digits, from the ledger's sequence number.
    static func sid(_ n: Int) -> String {
        let hex = String(n, radix: 16)
        return "SM" + String(repeating: "0", count: max(0, 32 - hex.count)) + hex
    }

    /// The Message resource a create answers with (201); `error_code` is null.
    struct CreatedMessage: Encodable {
        let sid, account_sid, to, from, body: String
        var status = "queued", num_segments = "1", direction = "outbound-api", api_version = "2010-04-01"

        enum CodingKeys: String, CodingKey { case sid, account_sid, to, from, body, status, num_segments, direction, api_version, error_code }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            for (key, value) in [(CodingKeys.sid, sid), (.account_sid, account_sid), (.to, to), (.from, from), (.body, body), (.status, status),
                (.num_segments, num_segments), (.direction, direction), (.api_version, api_version)] { try c.encode(value, forKey: key) }
            try c.encodeNil(forKey: .error_code)
        }
    }

    static func error(_ code: Int, _ message: String, status: Int) -> Response {
        jsonResponse(["code": code, "message": message, "more_info": "https://www.twilio.com/docs/errors/\(code)", "status": status], status: status)
    }
}

/// Alibaba Cloud SMS `SendSms` as a loopback fake. It checks the RPC signature the way Alibaba does
/// (its own canonicalisation here), the timestamp (15 min), nonce reuse, and the parameters, and
/// answers in Alibaba's shape `{"Code","Message","RequestId","BizId"}` with HTTP 400/404 for request
/// errors and HTTP 200 for business errors (`isv.*`).
public final class AliyunSMSFake: Sendable {
    public let ledger: FakeLedger
    let accessKeyId: String
    let accessKeySecret: String
    private let nonces = NIOLockedValueBox(Set<String>())

    public init(ledger: FakeLedger, accessKeyId: String, accessKeySecret: String) {
        self.ledger = ledger
        self.accessKeyId = accessKeyId
        self.accessKeySecret = accessKeySecret
    }

    public func add(to router: Router<BasicRequestContext>) {
        router.post("/") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 16)
            return self.handle(method: "POST", fields: formFields(String(buffer: body)))
        }
        router.get("/") { request, _ -> Response in
            self.handle(method: "GET", fields: formFields(request.uri.query ?? ""))
        }
    }

    private func handle(method: String, fields f: [String: String]) -> Response {
        if let forced = ledger.begin("aliyun.sendsms") { return forced.response }
        guard f["AccessKeyId"] == accessKeyId else { return Self.answer("InvalidAccessKeyId.NotFound", "Specified access key is not found.", status: 404) }
        guard f["SignatureMethod"] == "HMAC-SHA1", f["SignatureVersion"] == "1.0", let signature = f["Signature"] else {
            return Self.answer("MissingSignature", "Signature is mandatory for this action.", status: 400)
        }
        let canonical = f.filter { $0.key != "Signature" }.sorted { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }
            .map { Self.encode($0.key) + "=" + Self.encode($0.value) }.joined(separator: "&")
        let expected = Data(HMAC.sha1(key: Array((accessKeySecret + "&").utf8), data: Array((method + "&%2F&" + Self.encode(canonical)).utf8)))
            .base64EncodedString()
        guard ConstantTime.equals(signature, expected) else {
            return Self.answer("SignatureDoesNotMatch", "Specified signature is not matched with our calculation.", status: 400)
        }
        let formatter = ISO8601DateFormatter()
        guard let ts = f["Timestamp"].flatMap(formatter.date), abs(ts.timeIntervalSinceNow) < 900 else {
            return Self.answer("InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.", status: 400)
        }
        guard let nonce = f["SignatureNonce"], nonces.withLockedValue({ $0.insert(nonce).inserted }) else {
            return Self.answer("SignatureNonceUsed", "Specified signature nonce was used already.", status: 400)
        }
        guard f["Action"] == "SendSms", f["Version"] == "2017-05-25" else { return Self.answer("InvalidAction.NotFound", "Specified api is not found.", status: 404) }
        guard let phones = f["PhoneNumbers"], phones.range(of: #"^[0-9+]{5,20}$"#, options: .regularExpression) != nil else {
            return Self.answer("isv.MOBILE_NUMBER_ILLEGAL", "invalid mobile number")
        }
        guard let sign = f["SignName"], !sign.isEmpty else { return Self.answer("isv.SMS_SIGNATURE_ILLEGAL", "invalid signature name") }
        guard let code = f["TemplateCode"], code.hasPrefix("SMS_") else { return Self.answer("isv.SMS_TEMPLATE_ILLEGAL", "invalid template") }
        if let param = f["TemplateParam"], (try? JSONSerialization.jsonObject(with: Data(param.utf8))) as? [String: Any] == nil {
            return Self.answer("isv.INVALID_JSON_PARAM", "JSON parameter is invalid")
        }
        let bizId = ledger.deliver("aliyun", to: phones, messageId: f["OutId"], body: f) { "9006197469364\(String(format: "%05d", $0))^0" }
        return jsonResponse(["Code": "OK", "Message": "OK", "BizId": bizId, "RequestId": UUID().uuidString])
    }

    static func encode(_ s: String) -> String {
        let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
        return s.addingPercentEncoding(withAllowedCharacters: unreserved) ?? s
    }

    static func answer(_ code: String, _ message: String, status: Int = 200) -> Response {
        jsonResponse(["Code": code, "Message": message, "RequestId": UUID().uuidString], status: status)
    }
}
