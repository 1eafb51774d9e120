import GatewayCrypto

/// Builds platform callbacks as WeChat/WeCom would send them: the query string with signatures and,
/// for encrypted requests, the `<Encrypt>` envelope. Used by `scrmctl simulate`, the benchmark and tests.
public struct CallbackBuilder: Sendable {
    public let account: Account

    public init(account: Account) { self.account = account }

    public struct Request: Sendable {
        /// Path and query, e.g. `/webhooks/wechat/demo?signature=...`.
        public let pathAndQuery: String
        public let body: String

        public init(pathAndQuery: String, body: String) {
            self.pathAndQuery = pathAndQuery
            self.body = body
        }
    }

    /// A POST callback carrying `xml`; encrypted when `encrypt` (always for WeCom).
    public func post(xml: String, timestamp: Int64, nonce: String, encrypt: Bool) throws -> Request {
        let ts = String(timestamp)
        var query: [(String, String)] = []
        var body = xml
        if account.platform == .wechat { query.append(("signature", WeChatSignature.compute([account.token, ts, nonce]))) }
        query += [("timestamp", ts), ("nonce", nonce)]
        if encrypt || account.platform == .wecom {
            guard let key = account.encodingAESKey else { throw CryptoError(.invalidKey, "account has no EncodingAESKey") }
            let encrypted = try WeChatCipher(encodingAESKey: key, appId: account.appId).encrypt(xml)
            if account.platform == .wechat {
                query += [("openid", "simulated"), ("encrypt_type", "aes")]
            }
            query.append(("msg_signature", WeChatSignature.compute([account.token, ts, nonce, encrypted])))
            body = "<xml><ToUserName>\(ReplyXML.cdata(account.appId))</ToUserName><Encrypt>\(ReplyXML.cdata(encrypted))</Encrypt></xml>"
        }
        return Request(pathAndQuery: path + "?" + Self.encode(query), body: body)
    }

    /// The GET handshake (WeCom: `echo` is encrypted into echostr).
    public func handshake(echo: String, timestamp: Int64, nonce: String) throws -> Request {
        let ts = String(timestamp)
        switch account.platform {
        case .wechat:
            let q = [("signature", WeChatSignature.compute([account.token, ts, nonce])), ("timestamp", ts), ("nonce", nonce), ("echostr", echo)]
            return Request(pathAndQuery: path + "?" + Self.encode(q), body: "")
        case .wecom:
            guard let key = account.encodingAESKey else { throw CryptoError(.invalidKey, "account has no EncodingAESKey") }
            let echostr = try WeChatCipher(encodingAESKey: key, appId: account.appId).encrypt(echo)
            let q = [("msg_signature", WeChatSignature.compute([account.token, ts, nonce, echostr])), ("timestamp", ts), ("nonce", nonce), ("echostr", echostr)]
            return Request(pathAndQuery: path + "?" + Self.encode(q), body: "")
        }
    }

    public var path: String { "/webhooks/\(account.platform.rawValue)/\(account.id)" }

    public static func encode(_ query: [(String, String)]) -> String {
        query.map { "\($0.0)=\(FormEncoding.percentEncode($0.1))" }.joined(separator: "&")
    }
}

/// Sample callback XML, as WeChat sends it.
public enum SampleCallbacks {
    public static func text(to: String, from: String, content: String, msgId: String, createTime: Int64) -> String {
        "<xml><ToUserName>\(ReplyXML.cdata(to))</ToUserName><FromUserName>\(ReplyXML.cdata(from))</FromUserName><CreateTime>\(createTime)</CreateTime>"
            + "<MsgType><![CDATA[text]]></MsgType><Content>\(ReplyXML.cdata(content))</Content><MsgId>\(msgId)</MsgId></xml>"
    }

    public static func event(to: String, from: String, event: String, eventKey: String? = nil, createTime: Int64, extra: String = "") -> String {
        "<xml><ToUserName>\(ReplyXML.cdata(to))</ToUserName><FromUserName>\(ReplyXML.cdata(from))</FromUserName><CreateTime>\(createTime)</CreateTime>"
            + "<MsgType><![CDATA[event]]></MsgType><Event>\(ReplyXML.cdata(event))</Event>"
            + (eventKey.map { "<EventKey>\(ReplyXML.cdata($0))</EventKey>" } ?? "") + extra + "</xml>"
    }

    /// WeCom `change_external_contact`; an add carries the contact way's `State` and a `WelcomeCode` when given.
    public static func externalContact(
        corpId: String, change: String, userId: String, externalUserId: String, createTime: Int64, state: String? = nil, welcomeCode: String? = nil
    ) -> String {
        "<xml><ToUserName>\(ReplyXML.cdata(corpId))</ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>\(createTime)</CreateTime>"
            + "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event><ChangeType>\(ReplyXML.cdata(change))</ChangeType>"
            + "<UserID>\(ReplyXML.cdata(userId))</UserID><ExternalUserID>\(ReplyXML.cdata(externalUserId))</ExternalUserID>"
            + (state.map { "<State>\(ReplyXML.cdata($0))</State>" } ?? "") + (welcomeCode.map { "<WelcomeCode>\(ReplyXML.cdata($0))</WelcomeCode>" } ?? "")
            + "</xml>"
    }
}
