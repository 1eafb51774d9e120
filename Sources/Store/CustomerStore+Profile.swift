import GatewayCore
import RedisClient

extension CustomerStore {
    /// A checked change to one customer (values already canonical, see `CustomerAttributes`).
    public struct ProfilePatch: Sendable, Equatable {
        /// Hash fields to set (`profile.<name>`, `timezone`).
        public var fields: [String: String] = [:]
        /// Hash fields to remove.
        public var remove: Set<String> = []
        /// Channel (sms, email) -> granted or revoked.
        public var consent: [String: String] = [:]
        /// Who made the consent changes (`api`, `import`, a form's name).
        public var source = "api"

        public init() {}

        public var isEmpty: Bool { fields.isEmpty && remove.isEmpty && consent.isEmpty }
    }

    public enum PatchOutcome: Sendable, Equatable {
        case updated
        case merged(into: String)
        case notFound
    }

    /// Applies a patch in one atomic function call: fields, consent (with its source and time, and a
    /// timeline entry per change), then the indexes. Granting a channel clears the opt-outs recorded
    /// on the customer's addresses for it (a STOP reply, an unsubscribe link).
    public func patch(id: String, _ patch: ProfilePatch, nowMs: Int64) async throws -> PatchOutcome {
        guard ULID.isValid(id) else { return .notFound }
        var optOutKeys = [String]()
        let granted = patch.consent.filter { $0.value == "granted" }.keys
        if !granted.isEmpty {
            let identities = try await redis.send("SMEMBERS", Keys.customerIdentities(id)).strings.compactMap(Identity.init(storageForm:))
            for channel in granted.sorted() {
                let kind: Identity.Kind = channel == "sms" ? .phone : .email
                optOutKeys += identities.filter { $0.kind == kind }.map { suppression.key(channel: channel, address: $0.value) }
            }
        }
        let changed = patch.fields.keys.sorted()
        let removed = patch.remove.sorted()
        var entry = ""
        if !changed.isEmpty || !removed.isEmpty {
            let data: JSONValue = .object(["set": .array(changed.map(JSONValue.string)), "removed": .array(removed.map(JSONValue.string))])
            entry = JSONValue.object(["at": .int(nowMs), "type": .string("profile.updated"), "data": data]).text
        }
        var args = [id, String(nowMs), String(timelineCap), entry]
        args += [String(changed.count)] + changed.flatMap { [$0, patch.fields[$0]!] }
        args += [String(removed.count)] + removed
        let consent = patch.consent.sorted { $0.key < $1.key }
        args += [String(consent.count)] + consent.flatMap { [$0.key, $0.value, patch.source] }
        // A single Redis clears the opt-outs in the same call; a cluster after, from their own slots.
        let r = try await redis.fcall(
            StoreFunctions.library, "customer_patch", keys: [Keys.customer(id)] + (redis.isCluster ? [] : optOutKeys), args: shards.arguments(customer: id) + args
        ).array ?? []
        switch r.first?.string {
        case "ok":
            if redis.isCluster, !optOutKeys.isEmpty { _ = try await redis.pipelineChecked(optOutKeys.map { ["DEL", $0] }) }
            try await appendEmitted(r.last?.strings ?? [])
            return .updated
        case "merged": return .merged(into: try await resolve(r.count > 1 ? r[1].string ?? "" : ""))
        default: return .notFound
        }
    }
}

extension CustomerStore {
    /// A number asked to get SMS again (a START reply): the customer holding it grants SMS consent
    /// (with `source`; its addresses' opt-outs cleared), or, held by nobody, the number's opt-out goes.
    public func recordOptIn(sms phone: String, source: String, nowMs: Int64) async throws {
        if let id = try await lookup(Identity(kind: .phone, value: phone)) {
            var p = ProfilePatch()
            p.consent = ["sms": "granted"]
            p.source = source
            _ = try await patch(id: id, p, nowMs: nowMs)
        }
        _ = try await redis.send("DEL", suppression.key(channel: "sms", address: phone))
    }
}
