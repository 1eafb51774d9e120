/// Builds passive reply XML.
public enum ReplyXML {
    /// A CDATA section; a `]]>` inside the text is split across two sections.
    public static func cdata(_ s: String) -> String {
        guard s.utf8.contains(UInt8(ascii: "]")), s.contains("]]>") else { return "<![CDATA[" + s + "]]>" }
        return "<![CDATA[" + s.split(separator: "]]>", omittingEmptySubsequences: false).joined(separator: "]]]]><![CDATA[>") + "]]>"
    }

    /// A text reply to `message`: To/From swapped.
    public static func text(replyingTo message: InboundMessage, content: String, createTime: Int) -> String {
        "<xml><ToUserName>\(cdata(message.fromUser))</ToUserName><FromUserName>\(cdata(message.toUser))</FromUserName>"
            + "<CreateTime>\(createTime)</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>\(cdata(content))</Content></xml>"
    }

    /// A passive reply (text, image, news), per WeChat's (and WeCom's) reply XML; nil for a mini-program
    /// card, which WeChat takes only as a customer-service message.
    public static func render(_ content: WeChatContent, replyingTo message: InboundMessage, createTime: Int) -> String? {
        let head = "<xml><ToUserName>\(cdata(message.fromUser))</ToUserName><FromUserName>\(cdata(message.toUser))</FromUserName>"
            + "<CreateTime>\(createTime)</CreateTime>"
        switch content {
        case .text(let t): return text(replyingTo: message, content: t, createTime: createTime)
        case .image(let mediaId): return head + "<MsgType><![CDATA[image]]></MsgType><Image><MediaId>\(cdata(mediaId))</MediaId></Image></xml>"
        case .news(let articles):
            var xml = head + "<MsgType><![CDATA[news]]></MsgType><ArticleCount>\(articles.count)</ArticleCount><Articles>"
            for a in articles {
                xml += "<item><Title>\(cdata(a.title))</Title><Description>\(cdata(a.description ?? ""))</Description>"
                    + "<PicUrl>\(cdata(a.picUrl ?? ""))</PicUrl><Url>\(cdata(a.url))</Url></item>"
            }
            return xml + "</Articles></xml>"
        case .miniprogram: return nil
        }
    }

    /// The safe-mode envelope around an encrypted reply.
    public static func encrypted(_ encrypt: String, signature: String, timestamp: String, nonce: String) -> String {
        "<xml><Encrypt>\(cdata(encrypt))</Encrypt><MsgSignature>\(cdata(signature))</MsgSignature>"
            + "<TimeStamp>\(timestamp)</TimeStamp><Nonce>\(cdata(nonce))</Nonce></xml>"
    }
}
