import Foundation
import GatewayCore
import GatewayCrypto
import HTTPAPI
import HTTPTypes
import Hummingbird
import Metrics
import NIOCore
import RedisClient
import Store

/// `POST /webhooks/douyin/{account}`: a Douyin enterprise account's webhook events, with the same
/// strictness as WeChat's:
/// - `X-Douyin-Signature` (hex SHA-1 of the app's client secret and the body) checked in constant
///   time before the body is parsed: 403, nothing stored;
/// - the address check (`verify_webhook`) answered `{"challenge": ...}` once signed;
/// - an event for another app (`client_key`) 403; an event whose own time is outside
///   `douyin.windowSeconds` 403 (a replay); a body over the cap 413; a body that does not parse 400;
/// - a private message or a follow stored once per `Msg-Id` (the platform's retries repeat it; a
///   retry is answered 200 again), on one customer per open_id with a `douyin` identity, a follow
///   granting `douyin:<account>` consent; other events acknowledged and not stored;
/// - a storage outage is 503 so the platform retries; never a 5xx for what was sent.
public struct DouyinWebhookRoutes: Sendable {
    let settings: GatewayConfig.Douyin
    let customers: CustomerStore
    let maxBodyBytes: Int
    let clock: @Sendable () -> Int64

    public init(settings: GatewayConfig.Douyin, customers: CustomerStore, maxBodyBytes: Int, clock: @escaping @Sendable () -> Int64) {
        self.settings = settings
        self.customers = customers
        self.maxBodyBytes = maxBodyBytes
        self.clock = clock
    }

    public static let signatureHeader = "X-Douyin-Signature"

    /// The platform's signature of `body` under `secret`.
    public static func signature(secret: String, body: [UInt8]) -> String { Hex.encode(Digest.sha1(Array(secret.utf8) + body)) }

    public func register<Context: RequestContext>(on router: DeclaredRoutes<Context>) {
        router.post("/webhooks/douyin/:account", .public) { request, context -> Response in
            try await rejecting {
                let name = try context.parameters.require("account")
                guard let account = settings.account(name) else { throw APIError.notFound("Douyin account") }
                let buffer: ByteBuffer
                do { buffer = try await request.body.collect(upTo: maxBodyBytes) } catch is NIOTooManyBytesError {
                    throw APIError(.contentTooLarge, "body_too_large", "body exceeds \(maxBodyBytes) bytes")
                }
                let body = Array(buffer: buffer)
                let given = HTTPField.Name(Self.signatureHeader).flatMap { request.headers[$0] } ?? ""
                guard ConstantTime.equals(Array(given.lowercased().utf8), Array(Self.signature(secret: account.clientSecret, body: body).utf8)) else {
                    throw APIError(.forbidden, "bad_signature", "X-Douyin-Signature missing or not matching")
                }
                let event: DouyinEvent
                do { event = try DouyinEvent.parse(body) } catch let e as DouyinEvent.Invalid { throw APIError.badRequest(e.message, code: "invalid_body") }
                if case .verify(let challenge) = event.kind {
                    return try JSONResponse.encoded(Challenge(challenge: challenge))
                }
                guard event.clientKey.isEmpty || ConstantTime.equals(event.clientKey, account.clientKey) else {
                    throw APIError(.forbidden, "wrong_app", "the event is for another app (client_key)")
                }
                switch event.kind {
                case .message, .follow: return try await store(event, account: account, request: request)
                case .verify, .other: return Self.acknowledged("ignored")
                }
            }
        }
    }

    struct Challenge: Encodable { let challenge: JSONValue }

    func store(_ event: DouyinEvent, account: GatewayConfig.Douyin.Account, request: Request) async throws -> Response {
        let now = clock()
        if let at = event.atMs, abs(now - at) > Int64(settings.windowSeconds) * 1000 {
            throw APIError(.forbidden, "stale", "the event's time is outside the \(settings.windowSeconds) s window")
        }
        guard let key = event.dedupKey(msgId: HTTPField.Name("Msg-Id").flatMap { request.headers[$0] }) else {
            throw APIError.badRequest("no Msg-Id, message id or log_id to recognise a retry by", code: "invalid_body")
        }
        let outcome: CustomerStore.IngestOutcome
        do { outcome = try await customers.ingest(event.plan(account: account.id, dedupKey: key, nowMs: now)) } catch is RedisError { throw APIError.unavailable }
        switch outcome {
        case .stored:
            Counter(label: "scrm_douyin_events_total", dimensions: [("account", account.id), ("result", "stored")]).increment()
            return Self.acknowledged("stored")
        default:
            Counter(label: "scrm_douyin_events_total", dimensions: [("account", account.id), ("result", "duplicate")]).increment()
            return Self.acknowledged("duplicate")
        }
    }

    /// The platform only needs a quick 200.
    static func acknowledged(_ what: String) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: "{\"result\":\"\(what)\"}")))
    }
}
