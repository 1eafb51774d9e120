import GatewayCore
import HTTPAPI
import Ingress
import Store

/// The body of `PATCH /api/v1/customers/{id}`:
/// `{"profile": {"city": "Shanghai", "spend": 1200, "title": null}, "timezone": "Asia/Shanghai",
///   "consent": {"sms": "granted", "email": "revoked"}, "source": "web-form"}`.
/// A `null` removes the field. Every value is checked before anything is stored; the first bad
/// field is named in a 400.
enum CustomerPatchRequest {
    static func parse(_ body: JSONValue, attributes: CustomerAttributes) throws -> CustomerStore.ProfilePatch {
        guard case .object(let top) = body else { throw APIError.badRequest("body must be a JSON object", code: "invalid_body") }
        var patch = CustomerStore.ProfilePatch()
        for key in top.keys.sorted() where !["profile", "timezone", "consent", "source"].contains(key) {
            throw invalid(key, "unknown field (give profile, timezone, consent or source)")
        }
        if let profile = top["profile"] {
            guard case .object(let fields) = profile else { throw invalid("profile", "must be an object of attribute: value") }
            for (name, value) in fields.sorted(by: { $0.key < $1.key }) {
                if value == .null {
                    guard attributes.attributes[name] != nil else { throw invalid("profile.\(name)", "unknown attribute (declare it in customers.attributes)") }
                    patch.remove.insert("profile.\(name)")
                    continue
                }
                do { patch.fields["profile.\(name)"] = try attributes.canonical(name, value) } catch let e as CustomerAttributes.Invalid {
                    throw invalid(e.field, e.reason)
                }
            }
        }
        switch top["timezone"] {
        case nil: break
        case .null?: patch.remove.insert("timezone")
        case .string(let zone)? where CustomerAttributes.isTimeZone(zone): patch.fields["timezone"] = zone
        default: throw invalid("timezone", "must be an IANA time zone such as Asia/Shanghai, or null")
        }
        if let consent = top["consent"] {
            guard case .object(let channels) = consent else { throw invalid("consent", "must be an object of channel: granted | revoked") }
            for (channel, state) in channels.sorted(by: { $0.key < $1.key }) {
                guard ["sms", "email"].contains(channel) else { throw invalid("consent.\(channel)", "channel must be sms or email") }
                guard case .string(let s) = state, s == "granted" || s == "revoked" else { throw invalid("consent.\(channel)", "must be granted or revoked") }
                patch.consent[channel] = s
            }
        }
        if let source = top["source"] {
            guard case .string(let s) = source, (1...64).contains(s.utf8.count), s.utf8.allSatisfy({ IdentityInput.isTokenByte($0) || $0 == 0x2E }) else {
                throw invalid("source", "must be 1 to 64 letters, digits, -, _ or .")
            }
            patch.source = s
        }
        guard !patch.isEmpty else { throw APIError.badRequest("nothing to change: give profile, timezone or consent", code: "empty_patch") }
        return patch
    }

    static func invalid(_ field: String, _ reason: String) -> APIError {
        APIError.badRequest("\(field): \(reason)", code: "invalid_field")
    }
}
