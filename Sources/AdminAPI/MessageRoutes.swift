import GatewayCore
import GatewayCrypto
import HTTPAPI
import Hummingbird
import Ingress
import Outbound
import Store

/// `/api/v1/messages` (send one message, read its state) and `/api/v1/deadletters` (list, replay,
/// discard).
struct MessageRoutes {
    let config: GatewayConfig
    let catalog: AdapterCatalog
    let store: MessageStore
    let clock: @Sendable () -> Int64

    struct SendBody: Decodable {
        let channel: String
        let adapter: String?
        let customerId: String?
        let to: String?
        let account: String?
        let template: String?
        let subject: String?
        let text: String?
        let html: String?
        let link: String?
        let variables: JSONValue?
        /// wechat-custom: an image, news article or mini-program card instead of text.
        let content: WeChatContent?
        /// wechat-template: the mini-program page the message opens.
        let miniprogram: CampaignDefinition.MiniProgramLink?
        let idempotencyKey: String?
        let transactional: Bool?
    }

    func register<Context: RequestContext>(on group: DeclaredRoutes<Context>) {
        group.post("/messages", .messagesSend) { request, _ in
            try await storage {
                let body = try await request.decodeJSON(SendBody.self, maxBytes: config.server.maxBodyBytes)
                let message = try validate(body)
                switch try await store.accept(message) {
                case .created(let id):
                    AuditNote.target(id)
                    return try JSONResponse.encoded(Accepted(id: id, state: "queued"), status: .accepted)
                case .duplicate(let id):
                    let state = try await store.get(id)?.state.rawValue ?? "queued"
                    return try JSONResponse.encoded(Accepted(id: id, state: state, duplicate: true), status: .accepted)
                }
            }
        }
        group.get("/messages/:id", .messagesRead) { _, context in
            try await storage {
                let id = try context.parameters.require("id")
                guard MessageId.isValid(id), let m = try await store.get(id) else { throw APIError.notFound("message") }
                return try JSONResponse.encoded(MessageView(m))
            }
        }
        group.get("/deadletters", .messagesRead) { request, _ in
            try await storage {
                guard let limit = Int(request.uri.queryParameters.get("limit") ?? "50"), (1...500).contains(limit) else {
                    throw APIError.badRequest("limit must be 1...500", code: "invalid_limit")
                }
                let after: String? = request.uri.queryParameters.get("after").map { String($0) }
                if let after, !Self.isStreamId(after) { throw APIError.badRequest("after must be an entry id from this list", code: "invalid_cursor") }
                let letters = try await store.deadLetters(limit: limit, after: after)
                return try JSONResponse.encoded(DeadLetterList(deadLetters: letters.map(DeadLetterView.init)))
            }
        }
        group.post("/deadletters/:id/replay", .deadLettersWrite) { _, context in
            try await storage {
                let entry = try context.parameters.require("id")
                guard Self.isStreamId(entry), let letter = try await store.deadLetter(entry), let m = try await store.get(letter.messageId) else {
                    throw APIError.notFound("dead letter")
                }
                guard try await store.replay(letter, message: m, now: clock()) else { throw APIError.notFound("dead letter") }
                return try JSONResponse.encoded(["messageId": m.id, "state": "queued"], status: .accepted)
            }
        }
        group.delete("/deadletters/:id", .deadLettersWrite) { _, context in
            try await storage {
                let entry = try context.parameters.require("id")
                guard Self.isStreamId(entry), try await store.discard(entry) else { throw APIError.notFound("dead letter") }
                return try JSONResponse.encoded(["discarded": entry])
            }
        }
    }

    func validate(_ b: SendBody) throws -> OutboundMessage {
        if b.to != nil { try Principal.require(.messagesSendAny, for: "send to an address that is not a known customer") }
        if b.transactional == true { try Principal.require(.messagesSendAny, for: "send on the transactional lane") }
        guard let channel = AdapterSpec.Channel(rawValue: b.channel) else {
            throw APIError.badRequest("channel must be wechat, sms, email or douyin", code: "invalid_channel")
        }
        let adapterName = b.adapter ?? config.outbound.channels[channel.rawValue] ?? ""
        guard let adapter = catalog[adapterName], adapter.spec.channel == channel else {
            throw APIError.badRequest("adapter \(adapterName) is not enabled for channel \(channel.rawValue)", code: "unknown_adapter")
        }
        guard (b.customerId == nil) != (b.to == nil) else {
            throw APIError.badRequest("give either customerId or to", code: "invalid_recipient")
        }
        if let id = b.customerId, !ULID.isValid(id) { throw APIError.badRequest("customerId is not a customer id", code: "invalid_recipient") }
        var account: String?
        if channel == .wechat {
            guard let a = b.account, config.account(a) != nil else { throw APIError.badRequest("account must name a configured account", code: "unknown_account") }
            account = a
        }
        if channel == .douyin {
            guard let a = b.account, config.douyin.account(a) != nil else {
                throw APIError.badRequest("account must name a configured Douyin account (douyin.accounts)", code: "unknown_account")
            }
            account = a
        }
        var to: String?
        if let raw = b.to {
            do {
                switch channel {
                case .sms: to = try IdentityInput.e164(raw)
                case .email: to = try IdentityInput.email(raw)
                case .wechat: to = try IdentityInput.make(type: "openid", value: raw, account: account).value
                case .douyin: to = try IdentityInput.make(type: "douyin", value: raw, account: account).value
                }
            } catch let e as IdentityInput.Invalid {
                throw APIError.badRequest(e.message, code: "invalid_recipient")
            }
        }
        for (name, value, cap) in [("template", b.template, 256), ("subject", b.subject, 998), ("text", b.text, 16_384), ("link", b.link, 2048)] {
            if let value, value.utf8.count > cap { throw APIError.badRequest("\(name) exceeds \(cap) bytes", code: "invalid_body") }
        }
        if let v = b.variables {
            guard case .object = v else { throw APIError.badRequest("variables must be an object", code: "invalid_body") }
        }
        var text = b.text
        let content = try richContent(b, adapter: adapter, text: &text)
        let now = clock()
        let id = store.newId(now: now, recipient: b.customerId ?? to.map { Keys.contactSubject(channel: channel.rawValue, address: $0) })
        let key = b.idempotencyKey ?? "msg:\(id)"
        guard (1...200).contains(key.utf8.count), key.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw APIError.badRequest("idempotencyKey must be 1 to 200 printable ASCII characters", code: "invalid_idempotency_key")
        }
        var message = OutboundMessage(
            id: id, channel: channel.rawValue, adapter: adapterName, lane: b.transactional == true ? .transactional : .bulk,
            idempotencyKey: key, customerId: b.customerId, to: to, account: account, template: b.template, subject: b.subject, text: text,
            html: b.html, link: b.link, variables: b.variables?.text ?? "{}", createdAt: now)
        message.content = content?.text
        return message
    }

    /// `content` (wechat-custom) and `miniprogram` (wechat-template), checked and shaped as WeChat takes them.
    func richContent(_ b: SendBody, adapter: ResolvedAdapter, text: inout String?) throws -> JSONValue? {
        if let content = b.content {
            guard adapter.renders.name == "wechat-custom" else {
                throw APIError.badRequest("content is for customer-service messages (wechat-custom); \(adapter.spec.name) takes text or a template", code: "invalid_body")
            }
            guard b.text == nil else { throw APIError.badRequest("give text or content, not both", code: "invalid_body") }
            let problems = content.problems(at: "content", maxArticles: 1)
            guard problems.isEmpty else { throw APIError.badRequest(problems.joined(separator: "; "), code: "invalid_content") }
            if case .text(let t) = content {
                text = t
                return nil
            }
            return content.customServiceJSON
        }
        if let mp = b.miniprogram {
            guard adapter.renders.name == "wechat-template" else {
                throw APIError.badRequest("miniprogram is for template messages (wechat-template)", code: "invalid_body")
            }
            if let problem = mp.problem { throw APIError.badRequest("miniprogram " + problem, code: "invalid_content") }
            return mp.templateContent
        }
        return nil
    }

    static func isStreamId(_ s: String) -> Bool {
        let parts = s.split(separator: "-", omittingEmptySubsequences: false)
        return parts.count == 2 && parts.allSatisfy { !$0.isEmpty && $0.count <= 20 && $0.allSatisfy(\.isNumber) }
    }

}

/// `POST /messages`: the message id and its state (`duplicate` when the idempotency key was used).
struct Accepted: Encodable {
    let id: String
    let state: String
    var duplicate: Bool?
}

/// `GET /deadletters`: newest first.
struct DeadLetterList: Encodable {
    let deadLetters: [DeadLetterView]
}

/// One dead letter, and whether the provider has the message: `unknown` when a send was left in doubt
/// and asking the provider did not settle it (a replay may then send it twice), `no` otherwise (the
/// provider refused it, or was never reached).
struct DeadLetterView: Encodable {
    let id: String
    let messageId: String
    let channel: String
    let adapter: String
    let reason: String
    let error: String
    let answer: String
    let at: String
    let providerSaw: String

    init(_ d: MessageStore.DeadLetter) {
        id = d.entryId
        messageId = d.messageId
        channel = d.channel
        adapter = d.adapter
        reason = d.reason
        error = d.error
        answer = d.answer
        at = JSONResponse.isoTime(d.at)
        providerSaw = d.reason == "outcome_unknown" ? "unknown" : "no"
    }
}
