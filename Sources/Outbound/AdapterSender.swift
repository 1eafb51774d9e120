import GatewayCore
import GatewayCrypto
import HTTPTransport

/// Makes one provider call for one message: render by the adapter's spec, send through the shared
/// curl driver (or record it, for a sandbox adapter), and read the answer by the spec. Never throws:
/// every failure comes back classified, so the engine decides between retry, slow-down and dead letter.
public struct AdapterSender: Sendable {
    let transport: HTTPTransport
    let sandbox: SandboxOutbox
    let clock: @Sendable () -> Int64

    public init(transport: HTTPTransport = .shared, sandbox: SandboxOutbox, clock: @escaping @Sendable () -> Int64) {
        self.transport = transport
        self.sandbox = sandbox
        self.clock = clock
    }

    public func send(_ payload: OutboundPayload, via adapter: ResolvedAdapter, accessToken: String? = nil, publicURL: String, unsubscribeURL: String? = nil)
        async -> SendOutcome
    {
        let now = clock()
        let inputs = RenderInputs(
            nowMs: now, nonce: SecureRandom.alphanumeric(24), accessToken: accessToken,
            receiptURL: "\(publicURL)/webhooks/receipts/\(adapter.renders.name)", unsubscribeURL: unsubscribeURL)
        let request: RenderedRequest
        do {
            request = try adapter.render(payload, inputs)
        } catch {
            return .failed(SendFailure(errorClass: .permanent, code: "render", message: "\(error)"))
        }
        if adapter.spec.isSandbox {
            do {
                return .accepted(providerId: "sandbox-" + (try await sandbox.record(adapter: adapter, payload: payload, request: request, atMs: now)))
            } catch {
                return .failed(SendFailure(errorClass: .retry, code: "sandbox", message: "\(error)"))
            }
        }
        do {
            switch request {
            case .http(let r): return adapter.classify(try await transport.send(r), nowMs: clock())
            case .mail(let m):
                _ = try await transport.send(mail: m)
                return .accepted(providerId: nil)
            }
        } catch let error as TransportError {
            return .failed(ResolvedAdapter.classify(error))
        } catch {
            return .failed(SendFailure(errorClass: .retry, code: "transport", message: "\(error)"))
        }
    }
}
