import Foundation
import GatewayCore
import Store

/// Reads a CRM's webhook (`POST /webhooks/crm/{adapter}`) into changes, after checking its signature.
/// - HubSpot: `X-HubSpot-Signature-v3` over method + URI + body + `X-HubSpot-Request-Timestamp`, a
///   JSON array of events; `contact.propertyChange` events of the mapped properties become changes of
///   the customer whose `crm` identity is the event's `objectId`.
/// - Salesforce and the generic webhook: `SCRM-Signature` (as we sign ours) over
///   `{"changes": [{"customer" | "recordId", "stage"?, "owner"?, "tags"?: {"add": [], "remove": []}}]}`.
public struct CRMInbound: Sendable {
    public enum Failure: Error, Equatable {
        case unauthorized
        case badRequest(String)
    }

    public let spec: CRMAdapterSpec
    /// The URL the CRM calls (HubSpot signs it).
    public let url: String
    public let windowSeconds: Int64

    public init(spec: CRMAdapterSpec, publicURL: String, windowSeconds: Int) {
        self.spec = spec
        url = publicURL + "/webhooks/crm/" + spec.name
        self.windowSeconds = Int64(windowSeconds)
    }

    /// The headers that carry the request's signature (with its timestamp): what a replay repeats.
    public var signatureHeaders: [String] {
        spec.style == .hubspot ? ["X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp"] : [CRMSignature.header]
    }

    public func changes(headers: (String) -> String?, body: [UInt8], nowMs: Int64) throws(Failure) -> [CRMChange] {
        switch spec.style {
        case .hubspot:
            do {
                try CRMSignature.verifyHubSpotV3(
                    signature: headers("X-HubSpot-Signature-v3"), timestamp: headers("X-HubSpot-Request-Timestamp"),
                    secret: spec.setting("webhook_secret"), method: "POST", uri: url, body: body, nowMs: nowMs, windowSeconds: windowSeconds)
            } catch { throw .unauthorized }
            return try hubspot(body)
        case .salesforce, .webhook, .marketo, .eloqua:
            let secret = spec.style == .webhook ? spec.setting("secret") : spec.setting("webhook_secret")
            guard !secret.isEmpty else { throw .unauthorized }
            do {
                try CRMSignature.verify(header: headers(CRMSignature.header), secret: secret, body: body, nowSeconds: nowMs / 1000, windowSeconds: windowSeconds)
            } catch { throw .unauthorized }
            return try generic(body)
        }
    }

    func hubspot(_ body: [UInt8]) throws(Failure) -> [CRMChange] {
        guard case .array(let events)? = JSONValue.parse(body) else { throw .badRequest("expected a JSON array of events") }
        guard events.count <= 1000 else { throw .badRequest("at most 1000 events") }
        var out = [CRMChange]()
        for e in events {
            guard e.lookup("subscriptionType")?.scalarText == "contact.propertyChange",
                let object = e.lookup("objectId")?.scalarText, let name = e.lookup("propertyName")?.scalarText
            else { continue }
            let value = e.lookup("propertyValue")?.scalarText ?? ""
            var c = CRMChange(ref: .record(object))
            if name == spec.inbound.stageProperty {
                guard let stage = spec.inbound.stages[value] else { continue }  // a CRM stage we do not track
                c.stage = stage
            } else if name == spec.inbound.ownerProperty {
                guard !value.isEmpty else { continue }
                c.owner = value
            } else if name == spec.inbound.tagsProperty {
                c.addTags = value.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter(TagName.isValid)
            } else {
                continue
            }
            if !c.isEmpty { out.append(c) }
        }
        return out
    }

    func generic(_ body: [UInt8]) throws(Failure) -> [CRMChange] {
        guard case .array(let list)? = JSONValue.parse(body)?.lookup("changes") else { throw .badRequest("expected {\"changes\": [...]}") }
        guard list.count <= 1000 else { throw .badRequest("at most 1000 changes") }
        var out = [CRMChange]()
        for (i, item) in list.enumerated() {
            let ref: CRMChange.Ref
            if let id = item.lookup("customer")?.scalarText, !id.isEmpty {
                ref = .customer(id)
            } else if let r = item.lookup("recordId")?.scalarText, !r.isEmpty {
                ref = .record(r)
            } else {
                throw .badRequest("changes[\(i)]: give customer or recordId")
            }
            var c = CRMChange(ref: ref, owner: item.lookup("owner")?.scalarText)
            if let s = item.lookup("stage")?.scalarText {
                let stage = spec.inbound.stages[s] ?? s
                guard !stage.isEmpty, stage.utf8.allSatisfy(IdentityInput.isTokenByte) else { throw .badRequest("changes[\(i)].stage: not a stage name") }
                c.stage = stage
            }
            for (key, path) in [("add", \CRMChange.addTags), ("remove", \CRMChange.removeTags)] {
                guard case .array(let tags)? = item.lookup("tags")?.lookup(key) else { continue }
                let names = tags.compactMap(\.scalarText)
                guard names.count == tags.count, names.allSatisfy(TagName.isValid) else { throw .badRequest("changes[\(i)].tags.\(key): \(TagName.rule)") }
                c[keyPath: path] = names
            }
            if !c.isEmpty { out.append(c) }
        }
        return out
    }
}
