import Foundation
import GatewayCore
import GatewayCrypto
import HTTPTransport

/// What the provider says of a message whose send was left in doubt.
public enum LookupOutcome: Sendable, Equatable {
    /// The provider has it (its id): the message counts as sent, never sent again.
    case seen(providerId: String)
    /// The provider has no such message: it may be sent again.
    case notSeen
    /// No answer that settles it (the lookup failed): ask again later.
    case unknown(String)
}

extension ResolvedAdapter {
    /// Whether the provider can be asked about a message in doubt (a real adapter whose spec has a `lookup`).
    public var canLookUp: Bool { !spec.isSandbox && renders.lookup != nil }

    /// The lookup request for the message (the send's template context).
    func renderLookup(_ payload: OutboundPayload, _ inputs: RenderInputs) throws -> HTTPRequest? {
        guard let lookup = renders.lookup else { return nil }
        return try renderHTTP(lookup.request, templateContext(payload, inputs), inputs)
    }

    /// Reads the provider's answer: seen when an item matches every field and was created at or after
    /// `sinceMs` (less two minutes for clocks that differ).
    func readLookup(status: Int, body: [UInt8], payload: OutboundPayload, inputs: RenderInputs, sinceMs: Int64) -> LookupOutcome {
        guard let lookup = renders.lookup else { return .unknown("no lookup") }
        guard (200..<300).contains(status) else { return .unknown("lookup answered HTTP \(status)") }
        guard let json = JSONValue.parse(body), case .array(let items)? = json.lookup(lookup.list) else {
            return .unknown("lookup answer has no \(lookup.list) list")
        }
        let context = templateContext(payload, inputs)
        var expected = [(String, String)]()
        for (field, template) in lookup.match {
            guard let value = try? template.render(context) else { return .unknown("lookup field \(field) does not render") }
            expected.append((field, value))
        }
        for item in items where expected.allSatisfy({ item.lookup($0.0)?.scalarText == $0.1 }) {
            if let field = lookup.createdAt {
                guard let text = item.lookup(field)?.scalarText, let at = Self.providerTime(text), at >= sinceMs - 120_000 else { continue }
            }
            return .seen(providerId: item.lookup(lookup.providerId)?.scalarText ?? "")
        }
        return .notSeen
    }

    /// A provider's time: RFC 2822 (`Wed, 02 Dec 2026 19:00:00 +0000`, Twilio) or ISO 8601.
    static func providerTime(_ s: String) -> Int64? {
        let rfc = DateFormatter()
        rfc.locale = Locale(identifier: "en_US_POSIX")
        rfc.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        if let d = rfc.date(from: s) { return Int64(d.timeIntervalSince1970 * 1000) }
        return CampaignDefinition.milliseconds(s)
    }
}

extension AdapterSender {
    /// Asks the provider whether it took the message (a send left in doubt since `sinceMs`).
    public func lookup(_ payload: OutboundPayload, via adapter: ResolvedAdapter, sinceMs: Int64) async -> LookupOutcome {
        guard adapter.canLookUp else { return .unknown("the provider offers no lookup") }
        let inputs = RenderInputs(nowMs: clock(), nonce: SecureRandom.alphanumeric(24))
        do {
            guard let request = try adapter.renderLookup(payload, inputs) else { return .unknown("no lookup") }
            let response = try await transport.send(request)
            return adapter.readLookup(status: response.status, body: response.body, payload: payload, inputs: inputs, sinceMs: sinceMs)
        } catch {
            return .unknown("lookup failed: \(error)")
        }
    }
}
