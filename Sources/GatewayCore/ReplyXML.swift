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

    /// The safe-mode envelope around an encrypted reply.
    public static func encrypted(_ encrypt: String, signature: String, timestamp: String, nonce: String) -> String {
        "<xml><Encrypt>\(cdata(encrypt))</Encrypt><MsgSignature>\(cdata(signature))</MsgSignature>"
            + "<TimeStamp>\(timestamp)</TimeStamp><Nonce>\(cdata(nonce))</Nonce></xml>"
    }
}
