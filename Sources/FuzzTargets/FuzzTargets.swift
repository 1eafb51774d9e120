import Foundation
import GatewayCore
import GatewayCrypto

/// The parsers that read what strangers send, as libFuzzer targets (`scripts/fuzz <target> <seconds>`)
/// and as regression replays (FuzzRegressionTests run every committed input). A target returns
/// normally for any input; it traps when an invariant breaks (a DTD accepted, a round trip that does
/// not come back).
public enum FuzzTargets {
    public static let all: [String: @Sendable ([UInt8]) -> Void] = [
        "webhook-xml": webhookXML,
        "safe-decrypt": safeDecrypt,
        "tag-expression": tagExpression,
        "config-interpolation": configInterpolation,
        "json": json,
        "receipt-twilio": receiptTwilio,
        "receipt-sendgrid": receiptSendGrid,
        "receipt-wechat-job": receiptWeChatJob,
    ]

    public static var names: [String] { all.keys.sorted() }

    static func check(_ ok: Bool, _ what: @autoclosure () -> String) {
        if !ok { fatalError("invariant broken: \(what())") }
    }

    /// The webhook body parser: never a DTD or entity declaration, and a parsed message's fields are
    /// readable.
    static func webhookXML(_ bytes: [UInt8]) {
        guard let root = try? StrictXML.parse(bytes) else { return }
        // Markup outside CDATA sections (inside them "<!ENTITY" is just text).
        var markup = String(decoding: bytes, as: UTF8.self)
        while let open = markup.range(of: "<![CDATA["), let close = markup.range(of: "]]>", range: open.upperBound..<markup.endIndex) {
            markup.removeSubrange(open.lowerBound..<close.upperBound)
        }
        markup = markup.uppercased()
        check(!markup.contains("<!DOCTYPE") && !markup.contains("<!ENTITY"), "a document with a DTD or entity was accepted")
        if let m = try? InboundMessage(xml: root) { _ = (m.kind, m.msgId, m.fields.count) }
    }

    static let cipher = try! WeChatCipher(encodingAESKey: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", appId: "wxb11529c136998cb6")

    /// Safe-mode decryption of attacker-chosen base64, and encrypt -> decrypt of arbitrary bytes.
    static func safeDecrypt(_ bytes: [UInt8]) {
        _ = try? cipher.decrypt(base64: String(decoding: bytes, as: UTF8.self))
        _ = try? cipher.decrypt(base64: Data(bytes).base64EncodedString())
        if let sealed = try? cipher.encrypt(bytes, random: Array(repeating: 7, count: 16)) {
            check((try? cipher.decrypt(base64: sealed)) == bytes, "decrypt(encrypt(x)) != x")
        }
    }

    /// The audience expression parser: what parses renders back to an expression that parses equal.
    static func tagExpression(_ bytes: [UInt8]) {
        guard let e = try? TagExpression.parse(String(decoding: bytes, as: UTF8.self)) else { return }
        let again = try? TagExpression.parse(render(e))
        check(again.map(flat) == flat(e), "\(render(e)) does not parse back to \(e)")
    }

    /// `(a | b) | c` and `a | b | c` select the same customers: nested and/or of one kind flattened.
    static func flat(_ e: TagExpression) -> TagExpression {
        switch e {
        case .not(let x): return .not(flat(x))
        case .and(let xs): return .and(xs.map(flat).flatMap { if case .and(let ys) = $0 { ys } else { [$0] } })
        case .or(let xs): return .or(xs.map(flat).flatMap { if case .or(let ys) = $0 { ys } else { [$0] } })
        default: return e
        }
    }

    /// Text for an expression no longer and no more nested than the parser needed (it limits both):
    /// no spaces, and parentheses only where an `|` sits inside an `&` or under `!`.
    static func render(_ e: TagExpression) -> String {
        switch e {
        case .or(let xs): return xs.map(render).joined(separator: "|")
        case .and(let xs): return xs.map(renderUnary).joined(separator: "&")
        default: return renderUnary(e)
        }
    }

    static func renderUnary(_ e: TagExpression) -> String {
        switch e {
        case .tag(let t): return t
        case .field(let f, let v): return "\(f.rawValue):\(v)"
        case .score(let c, let n): return "score\(c.rawValue)\(n)"
        case .attribute(let name, let c, let v):
            let plain = !v.contains { $0.isWhitespace || "&|()!\"".contains($0) } && !"<>=".contains(v.first ?? "=")
            return "\(name)\(c.rawValue)" + (plain ? v : "\"\(v)\"")
        case .not(let x): return "!" + renderUnary(x)
        case .and, .or: return "(" + render(e) + ")"
        }
    }

    /// `${VAR}` / `${VAR:-default}` interpolation and the whole config loader on arbitrary YAML.
    static func configInterpolation(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let env = ["SCRM_A": "alpha", "SCRM_EMPTY": ""]
        if let out = try? Interpolation.expand(text, env: env, path: "fuzz") {
            check(text.contains("${") || out == text, "text without ${ changed")
        }
        _ = try? ConfigLoader(environment: env).load(yaml: text)
    }

    /// The strict JSON parser (admin API bodies, receipts, CRM answers): what parses is written as
    /// text that parses and writes back to the same bytes (rendered requests are byte-stable; a whole
    /// double is written as an integer on purpose).
    static func json(_ bytes: [UInt8]) {
        guard let v = JSONValue.parse(bytes) else { return }
        let text = v.text
        check(JSONValue.parse(Array(text.utf8))?.text == text, "JSON text \(text) is not stable")
    }

    static func receiptTwilio(_ bytes: [UInt8]) {
        let pairs = FormEncoding.pairs(String(decoding: bytes, as: UTF8.self))
        _ = ReceiptFormats.twilio(Dictionary(pairs, uniquingKeysWith: { _, last in last }), adapter: "twilio-sms")
        _ = ReceiptFormats.twilioSignature(url: "https://gw.example/webhooks/receipts/twilio-sms", pairs: pairs, authToken: "token")
    }

    static func receiptSendGrid(_ bytes: [UInt8]) {
        _ = ReceiptFormats.sendGrid(bytes, adapter: "sendgrid-edm")
        let half = bytes.count / 2
        _ = ReceiptFormats.sendGridSignatureValid(
            publicKeyBase64: String(decoding: bytes[..<half], as: UTF8.self), signatureBase64: Data(bytes[half...]).base64EncodedString(),
            timestamp: "1790000000", body: bytes)
    }

    static func receiptWeChatJob(_ bytes: [UInt8]) {
        guard let m = try? InboundMessage.parse(bytes) else { return }
        _ = ReceiptFormats.wechatTemplateJob(m)
    }
}
