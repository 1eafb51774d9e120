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

/// How one adapter's delivery callbacks are verified.
public enum ReceiptVerifier: Sendable {
    /// `X-Twilio-Signature` over `url` (exactly as we gave it to Twilio) and the form parameters.
    case twilio(authToken: String, url: String)
    /// SendGrid's ECDSA signature; `publicKey` is the base64 DER key from SendGrid's settings.
    case sendGrid(publicKey: String)
}

/// `POST /webhooks/receipts/{adapter}`: provider delivery callbacks. Unverifiable ones get 403 and
/// change nothing; a storage outage gets 503 so the provider retries.
public struct ReceiptRoutes: Sendable {
    let verifiers: [String: ReceiptVerifier]
    let receipts: ReceiptStore
    let replays: ReplayGuard
    /// Twilio's form callbacks (server.maxBodyBytes) and SendGrid's event batches (webhooks.receiptMaxBodyBytes:
    /// SendGrid posts up to 768 KB), both enforced while reading, before any signature work.
    let formMaxBodyBytes: Int
    let batchMaxBodyBytes: Int
    let clock: @Sendable () -> Int64
    /// SendGrid timestamps further than this from our clock are refused (replays).
    let windowSeconds: Int64

    public init(
        verifiers: [String: ReceiptVerifier], receipts: ReceiptStore, formMaxBodyBytes: Int, batchMaxBodyBytes: Int, windowSeconds: Int,
        clock: @escaping @Sendable () -> Int64
    ) {
        self.verifiers = verifiers
        self.receipts = receipts
        self.replays = ReplayGuard(redis: receipts.redis, ttlSeconds: 2 * windowSeconds)
        self.formMaxBodyBytes = formMaxBodyBytes
        self.batchMaxBodyBytes = batchMaxBodyBytes
        self.windowSeconds = Int64(windowSeconds)
        self.clock = clock
    }

    public func register<Context: RequestContext>(on router: DeclaredRoutes<Context>) {
        router.post("/webhooks/receipts/:adapter", .public) { request, context -> Response in
            try await rejecting {
                let name = try context.parameters.require("adapter")
                guard let verifier = verifiers[name] else { throw APIError.notFound("receipt endpoint") }
                let limit: Int
                if case .twilio = verifier { limit = formMaxBodyBytes } else { limit = batchMaxBodyBytes }
                let body: ByteBuffer
                do { body = try await request.body.collect(upTo: limit) } catch is NIOTooManyBytesError {
                    throw APIError(.contentTooLarge, "body_too_large", "body exceeds \(limit) bytes")
                }
                let bytes = Array(buffer: body)
                let parsed: [DeliveryReceipt]
                let signature: String
                switch verifier {
                case .twilio(let token, let url):
                    let pairs = FormEncoding.pairs(String(decoding: bytes, as: UTF8.self))
                    guard let sig = request.headers[HTTPField.Name("X-Twilio-Signature")!],
                        ConstantTime.equals(sig, ReceiptFormats.twilioSignature(url: url, pairs: pairs, authToken: token))
                    else { throw APIError(.forbidden, "bad_signature", "signature does not match") }
                    let form = Dictionary(pairs, uniquingKeysWith: { _, last in last })
                    guard let r = ReceiptFormats.twilio(form, adapter: name) else { throw APIError.badRequest("not a status callback", code: "invalid_receipt") }
                    parsed = [r]
                    signature = sig
                case .sendGrid(let key):
                    guard let sig = request.headers[HTTPField.Name("X-Twilio-Email-Event-Webhook-Signature")!],
                        let ts = request.headers[HTTPField.Name("X-Twilio-Email-Event-Webhook-Timestamp")!],
                        ReceiptFormats.sendGridSignatureValid(publicKeyBase64: key, signatureBase64: sig, timestamp: ts, body: bytes)
                    else { throw APIError(.forbidden, "bad_signature", "signature does not match") }
                    guard let t = Int64(ts), abs(clock() / 1000 - t) <= windowSeconds else {
                        throw APIError(.forbidden, "stale", "timestamp outside the accepted window")
                    }
                    guard let events = ReceiptFormats.sendGrid(bytes, adapter: name) else {
                        throw APIError.badRequest("body must be a JSON array of events", code: "invalid_receipt")
                    }
                    parsed = events
                    // What is signed, not the signature: an ECDSA signature can be re-randomised or flipped (s, n - s).
                    signature = ts + ":" + Hex.encode(Digest.sha256(bytes))
                }
                do {
                    let applied = try await replays.once(scope: "receipts:\(name)", signature: signature) {
                        for r in parsed { try await receipts.apply(r, nowMs: clock()) }
                    }
                    guard applied != nil else { throw APIError(.forbidden, "replayed", "this signed callback was already applied") }
                } catch is RedisError {
                    throw APIError.unavailable
                }
                Counter(label: "scrm_receipts_total", dimensions: [("adapter", name)]).increment(by: parsed.count)
                return Response(status: .ok)
            }
        }
    }
}
