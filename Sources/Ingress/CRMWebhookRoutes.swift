import CRMSync
import Foundation
import GatewayCore
import HTTPAPI
import HTTPTypes
import Hummingbird
import Metrics
import NIOCore
import RedisClient
import Store

/// `POST /webhooks/crm/{adapter}`: changes sales made in the CRM (stage, owner, tags). The signature
/// is checked first (403, nothing read); the changes are applied without being synced back (no echo
/// loop); a change for a customer we do not know is counted and skipped. A storage outage gets 503 so
/// the CRM retries.
public struct CRMWebhookRoutes: Sendable {
    let inbound: [String: CRMInbound]
    let store: CRMInboundStore
    let replays: ReplayGuard
    let maxBodyBytes: Int
    let clock: @Sendable () -> Int64

    public init(inbound: [CRMInbound], store: CRMInboundStore, maxBodyBytes: Int, windowSeconds: Int, clock: @escaping @Sendable () -> Int64) {
        self.inbound = Dictionary(uniqueKeysWithValues: inbound.map { ($0.spec.name, $0) })
        self.store = store
        self.replays = ReplayGuard(redis: store.redis, ttlSeconds: 2 * windowSeconds)
        self.maxBodyBytes = maxBodyBytes
        self.clock = clock
    }

    public func register<Context: RequestContext>(on router: DeclaredRoutes<Context>) {
        router.post("/webhooks/crm/:adapter", .public) { request, context -> Response in
            try await rejecting {
                let name = try context.parameters.require("adapter")
                guard let reader = inbound[name] else { throw APIError.notFound("CRM webhook") }
                let body: ByteBuffer
                do { body = try await request.body.collect(upTo: maxBodyBytes) } catch is NIOTooManyBytesError {
                    throw APIError(.contentTooLarge, "body_too_large", "body exceeds \(maxBodyBytes) bytes")
                }
                let changes: [CRMChange]
                do {
                    changes = try reader.changes(
                        headers: { HTTPField.Name($0).flatMap { n in request.headers[n] } }, body: Array(buffer: body), nowMs: clock())
                } catch CRMInbound.Failure.unauthorized {
                    throw APIError(.forbidden, "bad_signature", "signature missing, stale or not matching")
                } catch CRMInbound.Failure.badRequest(let why) {
                    throw APIError.badRequest(why, code: "invalid_body")
                }
                let applied: [String?]
                do {
                    let signature = reader.signatureHeaders.compactMap { HTTPField.Name($0).flatMap { n in request.headers[n] } }.joined(separator: "\n")
                    guard let done = try await replays.once(scope: "crm:\(name)", signature: signature, {
                        changes.isEmpty ? [] : try await store.apply(adapter: name, changes: changes, nowMs: clock())
                    }) else { throw APIError(.forbidden, "replayed", "this signed request was already applied") }
                    applied = done
                } catch is RedisError {
                    throw APIError.unavailable
                }
                let known = applied.compactMap { $0 }.count
                Counter(label: "scrm_crm_inbound_changes_total", dimensions: [("adapter", name), ("result", "applied")]).increment(by: known)
                Counter(label: "scrm_crm_inbound_changes_total", dimensions: [("adapter", name), ("result", "unknown_customer")])
                    .increment(by: applied.count - known)
                return Response(
                    status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(string: "{\"applied\":\(known),\"unknown\":\(applied.count - known)}")))
            }
        }
    }
}
