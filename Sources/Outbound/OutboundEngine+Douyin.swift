import GatewayCore
import Store

extension OutboundEngine {
    /// What a Douyin reply names: the customer's latest message in the session (`msg_id`, the
    /// conversation's `conversation_id`) and the enterprise account's own open_id. nil when the session
    /// holds no message of the customer's with both ids.
    static func douyinReply(_ session: CustomerStore.Session, accountOpenId: String) -> [String: String]? {
        for raw in session.messages.reversed() {
            guard let entry = JSONValue.parse(Array(raw.utf8)), entry.lookup("direction")?.scalarText == "in",
                let msgId = entry.lookup("data.MsgId")?.scalarText, !msgId.isEmpty,
                let conversation = entry.lookup("data.conversation")?.scalarText, !conversation.isEmpty
            else { continue }
            return ["msg_id": msgId, "conversation_id": conversation, "account_open_id": accountOpenId]
        }
        return nil
    }
}
