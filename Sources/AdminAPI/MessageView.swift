import GatewayCore
import HTTPAPI

/// What the API answers for an outbound message (`GET /messages/{id}`, a customer's messages).
struct MessageView: Encodable {
    let id: String
    let channel: String
    let adapter: String
    let lane: String
    let state: String
    let attempts: Int
    let idempotencyKey: String
    let createdAt: String
    let updatedAt: String
    let reason: String?
    let providerId: String?
    let lastError: String?
    let customerId: String?
    let to: String?
    let account: String?
    let campaign: String?
    let variant: String?
    let journey: String?
    /// Channels tried before this one at send time, and why each could not be used.
    let fellBackFrom: [FellBack]?
    let nextAttemptAt: String?
    /// Rich content as sent (WeChat's customer-service body, or a template's miniprogram).
    let content: JSONValue?

    struct FellBack: Encodable {
        let channel: String
        let reason: String
    }

    init(_ m: OutboundMessage) {
        func present(_ s: String?) -> String? { s?.isEmpty == false ? s : nil }
        id = m.id
        channel = m.channel
        adapter = m.adapter
        lane = m.lane.rawValue
        state = m.state.rawValue
        attempts = m.attempts
        idempotencyKey = m.idempotencyKey
        createdAt = JSONResponse.isoTime(m.createdAt)
        updatedAt = JSONResponse.isoTime(m.updatedAt)
        reason = present(m.reason)
        providerId = present(m.providerId)
        lastError = present(m.lastError)
        customerId = present(m.customerId)
        to = present(m.to)
        account = present(m.account)
        campaign = present(m.campaign)
        variant = present(m.variant)
        journey = present(m.journey)
        fellBackFrom = m.fallbacks.map { tried in
            tried.split(separator: ";").map { step in
                let parts = step.split(separator: ":", maxSplits: 1).map(String.init)
                return FellBack(channel: parts[0], reason: parts.count > 1 ? parts[1] : "")
            }
        }
        nextAttemptAt = m.state == .retrying ? m.nextAttemptAt.map(JSONResponse.isoTime) : nil
        content = m.content.flatMap { JSONValue.parse(Array($0.utf8)) }
    }
}

/// `GET /customers/{id}/messages`: newest first, a page at a time.
struct CustomerMessagesView: Encodable {
    let messages: [MessageView]
    /// The cursor of the next (older) page, when there is one.
    let next: String?
}
