import GatewayCore
import GatewayCrypto
import HTTPAPI
import Hummingbird
import HummingbirdCore

/// A callback that passed every check, ready to be stored.
struct VerifiedCallback {
    let message: InboundMessage
    /// Replay-guard key: the account's timestamp and nonce; nil when the signature covers the body
    /// and no body-less signature of this account is accepted (WeCom, WeChat safe mode). Then the
    /// callback's dedup key is its one key: a replay is the same message, answered as a duplicate.
    let nonceKey: String?
    /// What an identical retry repeats: SHA-256 of the query and the body.
    let fingerprint: String
    /// The request was encrypted: the reply must be too.
    let encrypted: Bool
}

/// Checks a platform callback: account mode, timestamp window, signature(s), decryption and appId
/// trailer, strict XML. Every failure is an `APIError` with a 4xx status; nothing here does I/O.
struct WebhookVerifier {
    let account: Account
    let cipher: WeChatCipher?
    let windowSeconds: Int64

    init(account: Account, windowSeconds: Int) {
        self.account = account
        self.cipher = account.encodingAESKey.flatMap { try? WeChatCipher(encodingAESKey: $0, appId: account.appId) }
        self.windowSeconds = Int64(windowSeconds)
    }

    /// GET handshake: the string to echo.
    func handshake(query: Query, now: Int64) throws -> String {
        let (timestamp, nonce) = try stamp(query, now: now)
        guard var echostr = query["echostr"], !echostr.isEmpty else { throw Rejection.missing("echostr") }
        switch account.platform {
        case .wechat:
            // The OA handshake echoes echostr as plain text, in every mode.
            let signature = try query.require("signature")
            guard WeChatSignature.verify(signature, parts: [account.token, timestamp, nonce]) else { throw Rejection.badSignature }
            return echostr
        case .wecom:
            echostr = echostr.replacingOccurrences(of: " ", with: "+")  // a '+' that arrived unescaped
            let signature = try query.require("msg_signature")
            guard WeChatSignature.verify(signature, parts: [account.token, timestamp, nonce, echostr]) else { throw Rejection.badSignature }
            return String(decoding: try decrypt(echostr), as: UTF8.self)
        }
    }

    /// POST callback.
    func verify(query: Query, body: [UInt8], now: Int64) throws -> VerifiedCallback {
        let (timestamp, nonce) = try stamp(query, now: now)
        let nonceKey = Keys.nonce(account: account.id, timestamp: timestamp, nonce: nonce)
        let fingerprint = Hex.encode(Digest.sha256(Array(query.raw.utf8) + [0x0a] + body))
        let encrypted = account.platform == .wecom || query["encrypt_type"] == "aes"
        if !encrypted {
            guard account.mode != .safe else {
                throw APIError(.forbidden, "encryption_required", "this account accepts encrypted (safe mode) callbacks only")
            }
            let signature = try query.require("signature")
            guard WeChatSignature.verify(signature, parts: [account.token, timestamp, nonce]) else { throw Rejection.badSignature }
            let message = try parse(body)
            return VerifiedCallback(message: message, nonceKey: nonceKey, fingerprint: fingerprint, encrypted: false)
        }
        guard account.mode != .plain, cipher != nil else {
            throw APIError(.badRequest, "encryption_not_configured", "this account is configured for plain mode")
        }
        let msgSignature = try query.require("msg_signature")
        let envelope = try parse(body)
        guard let encrypt = envelope.encrypt, !encrypt.isEmpty else { throw APIError.badRequest("encrypted callback without <Encrypt>", code: "malformed_body") }
        guard WeChatSignature.verify(msgSignature, parts: [account.token, timestamp, nonce, encrypt]) else { throw Rejection.badSignature }
        if account.platform == .wechat, let signature = query["signature"] {
            guard WeChatSignature.verify(signature, parts: [account.token, timestamp, nonce]) else { throw Rejection.badSignature }
        }
        let message = try parse(try decrypt(encrypt))
        // Compat mode also takes plain requests, whose `signature` leaves the body out: this request's
        // `signature` could carry a forged plain body, so its nonce is taken here too.
        let bodyless = account.platform == .wechat && account.mode == .compat
        return VerifiedCallback(message: message, nonceKey: bodyless ? nonceKey : nil, fingerprint: fingerprint, encrypted: true)
    }

    /// Encrypts a reply and wraps it with its own MsgSignature, timestamp and nonce.
    func encryptReply(_ xml: String, now: Int64) throws -> String {
        guard let cipher else { return xml }
        let encrypt = try cipher.encrypt(xml)
        let timestamp = String(now)
        let nonce = SecureRandom.alphanumeric(16)
        let signature = WeChatSignature.compute([account.token, timestamp, nonce, encrypt])
        return ReplyXML.encrypted(encrypt, signature: signature, timestamp: timestamp, nonce: nonce)
    }

    private func stamp(_ query: Query, now: Int64) throws -> (String, String) {
        let timestamp = try query.require("timestamp")
        let nonce = try query.require("nonce")
        guard let t = Int64(timestamp), timestamp.utf8.count <= 12 else { throw APIError.badRequest("timestamp must be Unix seconds", code: "bad_timestamp") }
        guard abs(now - t) <= windowSeconds else {
            throw APIError(.forbidden, "stale_timestamp", "timestamp is outside the accepted window of ±\(windowSeconds) s")
        }
        guard nonce.utf8.count <= 64 else { throw APIError.badRequest("nonce is too long", code: "bad_nonce") }
        return (timestamp, nonce)
    }

    private func decrypt(_ base64: String) throws -> [UInt8] {
        guard let cipher else { throw APIError(.badRequest, "encryption_not_configured", "this account has no EncodingAESKey") }
        do {
            return try cipher.decrypt(base64: base64)
        } catch let error as CryptoError {
            switch error.code {
            case .appIdMismatch: throw APIError(.forbidden, "appid_mismatch", "the encrypted payload is for another appId")
            default: throw APIError.badRequest("the encrypted payload could not be decrypted", code: "decrypt_failed")
            }
        }
    }

    private func parse(_ bytes: [UInt8]) throws -> InboundMessage {
        do {
            return try InboundMessage.parse(bytes)
        } catch let error as XMLParseError {
            if error.isDeclaration { throw APIError.badRequest("DTD and entity declarations are not allowed", code: "xml_declaration") }
            throw APIError.badRequest("body is not well-formed callback XML", code: "malformed_xml")
        }
    }
}

enum Rejection {
    static let badSignature = APIError(.forbidden, "bad_signature", "signature verification failed")
    static func missing(_ name: String) -> APIError {
        APIError(.unauthorized, "missing_signature", "query parameter \(name) is required")
    }
}

/// Decoded query parameters (first value wins), and the query as sent.
struct Query {
    let values: [String: String]
    let raw: String

    init(_ uri: URI) {
        raw = uri.query ?? ""
        var values = [String: String]()
        for (k, v) in uri.queryParameters where values[String(k)] == nil { values[String(k)] = String(v) }
        self.values = values
    }

    subscript(_ key: String) -> String? { values[key] }

    func require(_ key: String) throws -> String {
        guard let v = values[key], !v.isEmpty else { throw Rejection.missing(key) }
        return v
    }
}
