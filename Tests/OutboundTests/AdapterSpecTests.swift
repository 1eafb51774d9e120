import GatewayCore
import HTTPTransport
@testable import Outbound
import XCTest

final class AdapterSpecTests: XCTestCase {
    static let dir = AdapterFixtureTests.adaptersDir
    static let env = [
        "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "tok", "TWILIO_FROM": "+15017122661", "ALIYUN_ACCESS_KEY_ID": "id",
        "ALIYUN_ACCESS_KEY_SECRET": "secret", "ALIYUN_SMS_SIGN_NAME": "Shop", "SENDGRID_API_KEY": "SG.k",
    ]

    func adapter(_ name: String, env: [String: String] = env) throws -> ResolvedAdapter {
        try XCTUnwrap(try AdapterCatalog.load(directory: Self.dir, enabled: [name], environment: env)[name])
    }

    let inputs = RenderInputs(nowMs: 1_795_420_800_000, nonce: "n1", accessToken: "AT", unsubscribeURL: "https://gw/u/t")

    // MARK: signer

    func test_alibabaSigner_reproducesTheDocumentedSendSmsVector() {
        // Alibaba Cloud SMS "HTTP protocol and signature" example: AccessKeyId testId, secret testSecret.
        let signer = AlibabaRPCSigner(accessKeyId: "testId", accessKeySecret: "testSecret")
        let params = [
            ("Action", "SendSms"), ("Format", "XML"), ("OutId", "123"), ("PhoneNumbers", "15300000001"), ("RegionId", "cn-hangzhou"),
            ("SignName", "阿里云短信测试专用"), ("TemplateCode", "SMS_71390007"), ("TemplateParam", #"{"customer":"test"}"#),
            ("Version", "2017-05-25"),
        ]
        let nowMs: Int64 = 1_499_827_339_000  // 2017-07-12T02:42:19Z
        let signed = signer.sign(method: "GET", parameters: params, nowMs: nowMs, nonce: "45e25e9b-0a6f-4070-8c85-2956eda1b466")
        XCTAssertEqual(signed.last?.0, "Signature")
        XCTAssertEqual(signed.last?.1, "zJDF+Lrzhj/ThnlvIToysFRq6t4=")
        XCTAssertEqual(signed.first { $0.0 == "Format" }?.1, "XML", "a caller's Format is kept, not overwritten")
    }

    func test_alibabaSigner_reproducesTheDocumentedRPCVector() {
        // Alibaba Cloud RPC signature documentation example (DescribeRegions, secret testsecret).
        let signer = AlibabaRPCSigner(accessKeyId: "testid", accessKeySecret: "testsecret")
        let signed = signer.sign(
            method: "GET", parameters: [("Action", "DescribeRegions"), ("Format", "XML"), ("Version", "2014-05-26")],
            nowMs: 1_456_231_584_000, nonce: "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf")
        XCTAssertEqual(signed.last?.1, "OLeaidS1JvxuMvnyHOwuJ+uX5qY=")
    }

    func test_percentEncoding_isRFC3986() {
        XCTAssertEqual(ResolvedAdapter.percentEncode("a b*~-_./=&+派"), "a%20b%2A~-_.%2F%3D%26%2B%E6%B4%BE")
    }

    // MARK: validation

    func assertSpecError(_ yaml: String, path: String, contains: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try AdapterSpecParser.parse(yaml: yaml, file: "adapters/x.yaml", expectedName: "x"), file: file, line: line) { e in
            guard let e = e as? AdapterSpecError else { return XCTFail("\(e)", file: file, line: line) }
            XCTAssertEqual(e.file, "adapters/x.yaml", file: file, line: line)
            XCTAssertEqual(e.path, path, file: file, line: line)
            XCTAssertTrue(e.reason.contains(contains), "\(e.reason)", file: file, line: line)
        }
    }

    static let minimal = """
        name: x
        channel: sms
        settings: { base: "https://p.example", key: "env:P_KEY" }
        http:
          url: "{{settings.base}}/send"
          auth: { type: bearer, token: key }
          body: { fields: { to: "{{to}}" } }
          response: { success: { status: 200 } }
        """

    func test_minimalSpecParses() throws {
        let spec = try AdapterSpecParser.parse(yaml: Self.minimal, file: "adapters/x.yaml", expectedName: "x")
        XCTAssertEqual(spec.channel, .sms)
        XCTAssertNil(spec.rateLimit)
    }

    func test_badSpecs_failWithFileAndKey() {
        assertSpecError(Self.minimal.replacingOccurrences(of: "name: x", with: "name: y"), path: "name", contains: "file name")
        assertSpecError(Self.minimal.replacingOccurrences(of: "channel: sms", with: "channel: fax"), path: "channel", contains: "wechat, sms, email")
        assertSpecError(Self.minimal + "\n  retries: 3", path: "http.retries", contains: "unknown key")
        assertSpecError(Self.minimal.replacingOccurrences(of: "type: bearer", with: "type: magic"), path: "http.auth.type", contains: "hmac-sha1-sorted-params")
        assertSpecError(Self.minimal.replacingOccurrences(of: "\"env:P_KEY\"", with: "sk_live_123"), path: "settings.key", contains: "use env:NAME")
        assertSpecError(Self.minimal.replacingOccurrences(of: "token: key", with: "token: nokey"), path: "http.auth", contains: "nokey")
        assertSpecError(Self.minimal.replacingOccurrences(of: "{{to}}", with: "{{#to}}"), path: "http.body.fields.to", contains: "Mustache")
        assertSpecError(
            Self.minimal.replacingOccurrences(of: "{ status: 200 } }", with: "{ status: 200 }, errors: [{ codes: [1], class: retry }] }"),
            path: "http.response.errors[0].codes", contains: "error_code")
        assertSpecError(
            Self.minimal.replacingOccurrences(of: "{ status: 200 } }", with: "{ status: 200 }, errors: [{ status: 5xx, class: later }] }"),
            path: "http.response.errors[0].class", contains: "token_expired")
        assertSpecError(Self.minimal.replacingOccurrences(of: "{ status: 200 }", with: "{ status: 2x }"), path: "http.response.success.status", contains: "5xx")
        assertSpecError(Self.minimal.replacingOccurrences(of: "url: \"{{settings.base}}", with: "url: \"ftp://h"), path: "http.url", contains: "https://")
        assertSpecError(Self.minimal + "\nsmtp: {}", path: "", contains: "exactly one")
        assertSpecError(Self.minimal.replacingOccurrences(of: "{ fields: { to: \"{{to}}\" } }", with: "{ fields: { to: { $eval: x } } }"),
            path: "http.body.fields.to.$eval", contains: "unknown directive")
    }

    func test_sandboxMustRenderARealAdapterOfTheSameChannel() throws {
        let real = try AdapterSpecParser.parse(yaml: Self.minimal, file: "x.yaml", expectedName: "x")
        let sandbox = try AdapterSpecParser.parse(yaml: "name: s\nchannel: sms\nsandbox: { renders: nope }", file: "s.yaml")
        XCTAssertThrowsError(try AdapterCatalog(specs: [real, sandbox], enabled: [], environment: [:])) {
            XCTAssertEqual(($0 as? AdapterSpecError)?.path, "sandbox.renders")
        }
        let wrongChannel = try AdapterSpecParser.parse(yaml: "name: s\nchannel: email\nsandbox: { renders: x }", file: "s.yaml")
        XCTAssertThrowsError(try AdapterCatalog(specs: [real, wrongChannel], enabled: [], environment: [:])) {
            XCTAssertEqual(($0 as? AdapterSpecError)?.path, "channel")
        }
    }

    func test_enabledAdapterWithoutItsSecret_failsStartUp_butUnusedOnesDoNot() throws {
        XCTAssertNoThrow(try AdapterCatalog.load(directory: Self.dir, enabled: ["sandbox-sms"], environment: [:]))
        XCTAssertThrowsError(try AdapterCatalog.load(directory: Self.dir, enabled: ["twilio-sms"], environment: ["TWILIO_ACCOUNT_SID": "AC1", "TWILIO_FROM": "+15017122661"])) {
            let e = $0 as? AdapterSpecError
            XCTAssertTrue(e?.file.hasSuffix("twilio-sms.yaml") ?? false)
            XCTAssertEqual(e?.path, "settings.auth_token")
            XCTAssertTrue(e?.reason.contains("TWILIO_AUTH_TOKEN") ?? false)
        }
        XCTAssertThrowsError(try AdapterCatalog.load(directory: Self.dir, enabled: ["nope"], environment: [:]))
    }

    func test_sandboxNeverReadsTheRealSecretsOrHosts() throws {
        let env = Self.env.merging(["SCRM_TWILIO_API_BASE": "https://real.example", "TWILIO_AUTH_TOKEN": "REALSECRET"]) { $1 }
        let sandbox = try adapter("sandbox-sms", env: env)
        guard case .http(let r) = try sandbox.render(OutboundPayload(messageId: "m", to: "+1", text: "hi"), inputs) else { return XCTFail() }
        XCTAssertTrue(r.url.hasPrefix("https://api.twilio.com/"), r.url)
        let auth = r.headers.first { $0.0 == "Authorization" }?.1 ?? ""
        let decoded = String(decoding: Data(base64Encoded: String(auth.dropFirst(6))) ?? Data(), as: UTF8.self)
        XCTAssertFalse(decoded.contains("REALSECRET"), "the real auth token must not reach the sandbox record")
    }

    // MARK: rendering

    func test_missingVariables_failTheRenderWithTheirName() throws {
        let template = try adapter("wechat-template")
        XCTAssertThrowsError(try template.render(OutboundPayload(messageId: "m", to: "o1", variables: ["a": .string("1")]), inputs)) {
            XCTAssertEqual($0 as? RenderError, .missingVariable("template"))
        }
        XCTAssertThrowsError(try template.render(OutboundPayload(messageId: "m", to: "o1", template: "T"), inputs)) {
            XCTAssertEqual($0 as? RenderError, .missingVariable("vars"), "a template message needs its data")
        }
        var noToken = inputs
        noToken.accessToken = nil
        XCTAssertThrowsError(try template.render(OutboundPayload(messageId: "m", to: "o1", template: "T", variables: ["a": .string("1")]), noToken))
        XCTAssertThrowsError(try adapter("twilio-sms").render(OutboundPayload(messageId: "m", to: "+1"), inputs)) {
            XCTAssertEqual($0 as? RenderError, .missingVariable("text"))
        }
        var noUnsubscribe = inputs
        noUnsubscribe.unsubscribeURL = nil
        XCTAssertThrowsError(try adapter("smtp-edm").render(OutboundPayload(messageId: "m", to: "a@b.c", subject: "s", text: "t"), noUnsubscribe)) {
            XCTAssertEqual($0 as? RenderError, .missingVariable("unsubscribe_url"), "bulk email never goes out without its unsubscribe link")
        }
    }

    func test_hostileValuesCannotBreakTheEncoding() throws {
        let hostile = #"x","touser":"oEVIL"}&To=+1999%0d%0aBcc: a@evil"#
        guard case .http(let json) = try adapter("wechat-custom").render(OutboundPayload(messageId: "m", to: "o1", text: hostile), inputs),
            case .object(let o)? = JSONValue.parse(json.body)
        else { return XCTFail("not JSON") }
        XCTAssertEqual(o["touser"], .string("o1"))
        XCTAssertEqual(o["text"]?.lookup("content"), .string(hostile))

        guard case .http(let form) = try adapter("twilio-sms").render(OutboundPayload(messageId: "m", to: "+1", text: hostile), inputs) else {
            return XCTFail()
        }
        let pairs = String(decoding: form.body, as: UTF8.self).split(separator: "&")
        XCTAssertEqual(pairs.filter { $0.hasPrefix("To=") }, ["To=%2B1"], "one To, ours")
        XCTAssertThrowsError(
            try adapter("smtp-edm").render(OutboundPayload(messageId: "m", to: "a@b.c", subject: "hi\r\nBcc: x@evil", text: "t"), inputs),
            "a line break in a header is refused")
    }

    func test_optionalMembersAreLeftOut() throws {
        guard case .http(let r) = try adapter("wechat-template").render(
            OutboundPayload(messageId: "m", to: "o1", template: "T", variables: ["first": .string("Hi")]), inputs),
            case .object(let o)? = JSONValue.parse(r.body)
        else { return XCTFail() }
        XCTAssertNil(o["url"], "no link, no url member")
        XCTAssertEqual(o["data"], .object(["first": .object(["value": .string("Hi")])]))

        guard case .http(let sg) = try adapter("sendgrid-edm").render(OutboundPayload(messageId: "m", to: "a@b.c", subject: "s", text: "t"), inputs),
            case .array(let content)? = JSONValue.parse(sg.body)?.lookup("content")
        else { return XCTFail() }
        XCTAssertEqual(content.count, 1, "no html, no text/html part")
    }

    // MARK: answers

    func response(_ status: Int, _ body: String, headers: [(String, String)] = []) -> HTTPResponse {
        HTTPResponse(status: status, headers: headers, body: Array(body.utf8))
    }

    func failure(_ outcome: SendOutcome) -> SendFailure? {
        if case .failed(let f) = outcome { return f }
        return nil
    }

    func test_wechatAnswers() throws {
        let a = try adapter("wechat-template")
        XCTAssertEqual(
            a.classify(response(200, #"{"errcode":0,"errmsg":"ok","msgid":2553847254416343040}"#), nowMs: 0),
            .accepted(providerId: "2553847254416343040"), "a msgid past 2^53 stays exact")
        for (code, cls) in [(40001, ErrorClass.tokenExpired), (42001, .tokenExpired), (45009, .quota), (45011, .throttle), (-1, .retry), (43004, .optedOut), (40003, .badAddress), (40037, .permanent), (99999, .permanent)] {
            let f = failure(a.classify(response(200, #"{"errcode":\#(code),"errmsg":"e\#(code)"}"#), nowMs: 0))
            XCTAssertEqual(f?.errorClass, cls, "errcode \(code)")
            XCTAssertEqual(f?.code, String(code))
            XCTAssertEqual(f?.message, "e\(code)")
        }
        XCTAssertEqual(failure(a.classify(response(502, "<html>bad gateway</html>"), nowMs: 0))?.errorClass, .retry)
        XCTAssertEqual(failure(a.classify(response(200, "not json"), nowMs: 0))?.errorClass, .permanent, "a 200 without errcode 0 is not a success")
    }

    func test_twilioAnswers_honourRetryAfter() throws {
        let a = try adapter("twilio-sms")
        XCTAssertEqual(a.classify(response(201, #"{"sid":"SM123","status":"queued"}"#), nowMs: 0), .accepted(providerId: "SM123"))
        let throttled = failure(a.classify(response(429, #"{"code":20429,"message":"Too Many Requests","status":429}"#, headers: [("Retry-After", "3")]), nowMs: 0))
        XCTAssertEqual(throttled?.errorClass, .throttle)
        XCTAssertEqual(throttled?.retryAfterMs, 3000)
        let dated = failure(a.classify(response(503, "{}", headers: [("retry-after", "Mon, 23 Nov 2026 08:00:10 GMT")]), nowMs: 1_795_420_800_000))
        XCTAssertEqual(dated?.errorClass, .retry)
        XCTAssertEqual(dated?.retryAfterMs, 10_000)
        let bad = failure(a.classify(response(400, #"{"code":21211,"message":"The 'To' number is not a valid phone number.","status":400}"#), nowMs: 0))
        XCTAssertEqual(bad?.errorClass, .badAddress, "a recipient reason")
        XCTAssertEqual(bad?.code, "21211")
        let stopped = failure(a.classify(response(400, #"{"code":21610,"message":"Attempt to send to unsubscribed recipient","status":400}"#), nowMs: 0))
        XCTAssertEqual(stopped?.errorClass, .optedOut)
    }

    /// A send in doubt is settled by Twilio's message list: seen when a message to the number, from our
    /// number, with the same body, was created since the doubtful call began (two minutes of clock skew).
    func test_twilioLookup_rendersTheListQuery_andReadsWhetherTwilioHasTheMessage() throws {
        let a = try adapter("twilio-sms")
        XCTAssertTrue(a.canLookUp)
        let payload = OutboundPayload(messageId: "m1", to: "+14155550100", text: "Expo opens at 9")
        let inputs = RenderInputs(nowMs: 0, nonce: "n")
        let request = try XCTUnwrap(try a.renderLookup(payload, inputs))
        XCTAssertEqual(request.method, "GET")
        XCTAssertEqual(request.url, "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?From=%2B15017122661&PageSize=50&To=%2B14155550100")
        XCTAssertTrue(request.headers.contains { $0.0 == "Authorization" && $0.1.hasPrefix("Basic ") })
        func list(_ items: String) -> [UInt8] { Array(#"{"messages":[\#(items)],"page":0,"page_size":50}"#.utf8) }
        let item = #"{"sid":"SMabc","to":"+14155550100","from":"+15017122661","body":"Expo opens at 9","date_created":"Wed, 02 Dec 2026 19:00:00 +0000"}"#
        let since = try XCTUnwrap(ResolvedAdapter.providerTime("Wed, 02 Dec 2026 19:00:30 +0000"))
        XCTAssertEqual(a.readLookup(status: 200, body: list(item), payload: payload, inputs: inputs, sinceMs: since), .seen(providerId: "SMabc"))
        let other = item.replacingOccurrences(of: "Expo opens at 9", with: "Another message")
        XCTAssertEqual(a.readLookup(status: 200, body: list(other), payload: payload, inputs: inputs, sinceMs: since), .notSeen)
        XCTAssertEqual(
            a.readLookup(status: 200, body: list(item), payload: payload, inputs: inputs, sinceMs: since + 3_600_000), .notSeen,
            "an older message with the same text is not this one")
        XCTAssertEqual(a.readLookup(status: 200, body: list(""), payload: payload, inputs: inputs, sinceMs: since), .notSeen)
        guard case .unknown = a.readLookup(status: 503, body: [], payload: payload, inputs: inputs, sinceMs: since) else { return XCTFail("a 503 settles nothing") }
        guard case .unknown = a.readLookup(status: 200, body: Array("{}".utf8), payload: payload, inputs: inputs, sinceMs: since) else {
            return XCTFail("an answer without the list settles nothing")
        }
        XCTAssertFalse(try adapter("sendgrid-edm").canLookUp, "SendGrid offers no lookup here: its sends in doubt stay outcome_unknown")
    }

    func test_badLookups_failWithTheirKey() {
        let lookup = "\nlookup:\n  method: GET\n  url: \"{{settings.base}}/list\"\n  list: items\n  provider_id: id\n"
        assertSpecError(Self.minimal + lookup, path: "lookup.match", contains: "identify the message")
        assertSpecError(
            Self.minimal + lookup + "  match: { to: \"{{to}}\" }\n  body: { fields: { a: b } }", path: "lookup.body", contains: "no body")
        XCTAssertNoThrow(try AdapterSpecParser.parse(yaml: Self.minimal + lookup + "  match: { to: \"{{to}}\" }", file: "adapters/x.yaml", expectedName: "x"))
    }

    func test_aliyunAndSendGridAnswers() throws {
        let ali = try adapter("aliyun-sms")
        XCTAssertEqual(
            ali.classify(response(200, #"{"Code":"OK","Message":"OK","BizId":"900619746936498440^0","RequestId":"F655A8D5"}"#), nowMs: 0),
            .accepted(providerId: "900619746936498440^0"))
        XCTAssertEqual(failure(ali.classify(response(200, #"{"Code":"isv.AMOUNT_NOT_ENOUGH","Message":"账户余额不足"}"#), nowMs: 0))?.errorClass, .quota)
        XCTAssertEqual(failure(ali.classify(response(400, #"{"Code":"Throttling.User","Message":"Request was denied"}"#), nowMs: 0))?.errorClass, .throttle)

        let sg = try adapter("sendgrid-edm")
        XCTAssertEqual(sg.classify(response(202, "", headers: [("X-Message-Id", "14c5d75ce93")]), nowMs: 0), .accepted(providerId: "14c5d75ce93"))
        let bad = failure(sg.classify(response(400, #"{"errors":[{"message":"Invalid email","field":"personalizations.0.to.0.email","help":null}]}"#), nowMs: 0))
        XCTAssertEqual(bad?.errorClass, .permanent)
        XCTAssertEqual(bad?.message, "Invalid email")
        XCTAssertEqual(failure(sg.classify(response(500, ""), nowMs: 0))?.errorClass, .retry)
    }
}
