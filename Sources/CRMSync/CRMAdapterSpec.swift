import Foundation
import GatewayCore
import Store

/// One `adapters/crm/*.yaml`: which wire style, where, the batch and budget limits, and how a customer
/// maps onto the CRM's properties (out) and the CRM's changes onto the customer (in). Read with the
/// environment: `${VAR:-default}` anywhere, `env:NAME` for secrets that must be set.
public struct CRMAdapterSpec: Sendable {
    public enum Style: String, Sendable, CaseIterable {
        /// `POST /crm/v3/objects/contacts/batch/upsert`, `idProperty`, bearer token.
        case hubspot
        /// sObject Collections upsert by external id: `PATCH .../composite/sobjects/{object}/{field}`.
        case salesforce
        /// A JSON POST signed with HMAC-SHA256 over timestamp + body (`SCRM-Signature`).
        case webhook
        /// Marketo's `POST /rest/v1/leads.json` (`createOrUpdate` by a lookup field), with an OAuth
        /// client-credentials token from `/identity/oauth/token` shared by every process.
        case marketo
        /// Oracle Eloqua contacts, keyed by email address: a small batch through the REST API (create,
        /// update by contact id, search on a conflict), a large one as a Bulk API 2.0 import (define,
        /// upload, sync, poll). Basic auth `site\\user`; the instance's base URL from `/id`.
        case eloqua
    }

    public var name: String
    public var style: Style
    public var summary: String
    /// Resolved settings (base_url, token, secret, ...).
    public var settings: [String: String]
    /// The CRM property holding our customer id (HubSpot idProperty, Salesforce external id field).
    public var idProperty: String
    /// Salesforce object (Lead, Contact) and API version.
    public var object: String
    public var apiVersion: String
    public var batchSize: Int
    public var maxWaitMs: Int64
    public var budget: CRMBudget.Limit
    /// CRM property -> what it holds, in file order.
    public var fields: [(property: String, source: CRMValueSource)]
    public var inbound: Inbound
    /// Marketo: recent interactions sent as custom activities of this type (nil = none).
    public var activities: Activities?
    /// Eloqua: when a batch goes as a Bulk API import, and how its sync is watched.
    public var bulk = Bulk()

    /// An Eloqua batch of at least `minRecords` contacts goes as a Bulk API 2.0 import, a smaller one
    /// through the REST API; the import's sync is polled every `pollMs` and given up (retried) after
    /// `timeoutMs`.
    public struct Bulk: Sendable, Equatable {
        public var minRecords = 100
        public var pollMs: Int64 = 2_000
        public var timeoutMs: Int64 = 3_600_000
        public init() {}
    }

    /// Eloqua's email address field: its contacts' unique key, and the import's identifier.
    public static let eloquaEmailField = "C_EmailAddress"

    /// A Marketo custom activity type the interactions become: the interaction's type is its primary
    /// attribute, its detail (JSON) the `detailAttribute`.
    public struct Activities: Sendable, Equatable {
        public var typeId: Int
        public var detailAttribute: String

        public init(typeId: Int, detailAttribute: String) {
            self.typeId = typeId
            self.detailAttribute = detailAttribute
        }
    }

    /// Which CRM properties (HubSpot) or change keys (webhook, Salesforce) change what on our side.
    public struct Inbound: Sendable {
        public var stageProperty: String?
        public var ownerProperty: String?
        public var tagsProperty: String?
        /// CRM stage value -> our stage.
        public var stages: [String: String]
    }

    public func setting(_ key: String) -> String { settings[key] ?? "" }

    public static let maxBatch: [Style: Int] = [.hubspot: 100, .salesforce: 200, .webhook: 1000, .marketo: 300, .eloqua: 5000]

    /// The most bytes one request body may have (Marketo answers 413 over 1 MB); records past it wait
    /// for the next batch.
    /// Eloqua: a Bulk API upload over 32 MB is refused.
    public static let maxBody: [Style: Int] = [.marketo: 1_000_000, .eloqua: 32_000_000]
}

/// What a mapped CRM property holds, taken from the customer's snapshot.
public enum CRMValueSource: Sendable, Equatable {
    /// id, email, phone, unionid, score, stage, tier, owner, tags, qualifiedAt, firstSeenAt,
    /// lastSeenAt, interactions, consent.email, consent.sms.
    case builtin(String)
    /// `profile.<name>` or `field.<name>` (imported custom fields).
    case field(String)
    /// `=text`: always this text.
    case literal(String)
    /// `a || b || =text`: the first that has a value (a field the CRM requires, with a fallback).
    indirect case firstOf([CRMValueSource])

    static let builtins: Set<String> = [
        "id", "email", "phone", "unionid", "score", "stage", "tier", "owner", "tags", "qualifiedAt", "firstSeenAt", "lastSeenAt",
        "interactions", "consent.email", "consent.sms",
    ]

    static func parse(_ text: String, path: String) throws -> CRMValueSource {
        if text.contains(" || ") {
            let parts = text.components(separatedBy: " || ").map { $0.trimmingCharacters(in: .whitespaces) }
            return .firstOf(try parts.map { try parse($0, path: path) })
        }
        if text.hasPrefix("=") { return .literal(String(text.dropFirst())) }
        if builtins.contains(text) { return .builtin(text) }
        if text.hasPrefix("profile.") || text.hasPrefix("field."), text.split(separator: ".").count == 2 { return .field(text) }
        throw ConfigError(
            path: path,
            reason: "unknown value \(text) (one of \(builtins.sorted().joined(separator: ", ")), profile.<name>, field.<name>, =text, or a || b for the first with a value)")
    }
}

public struct CRMSpecError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let path: String
    public let reason: String
    public var description: String { "\(file): \(path.isEmpty ? "<root>" : path): \(reason)" }
}

public enum CRMAdapterSpecParser {
    /// Loads the named adapters from `directory` (`<name>.yaml` each).
    public static func load(directory: String, names: [String], environment: [String: String]) throws -> [CRMAdapterSpec] {
        try names.map { name in
            let file = directory + "/" + name + ".yaml"
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                let known = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".yaml") }
                    .map { String($0.dropLast(5)) }.sorted()
                throw CRMSpecError(file: file, path: "", reason: "no CRM adapter spec \(name) (known: \(known.joined(separator: ", ")))")
            }
            return try parse(yaml: text, file: file, environment: environment, expectedName: name)
        }
    }

    public static func parse(yaml: String, file: String, environment: [String: String], expectedName: String? = nil) throws -> CRMAdapterSpec {
        do {
            let tree: Any?
            tree = try SafeYAML.load(yaml)
            return try spec(ConfigNode(value: tree ?? [String: Any](), path: "", env: environment).map(), environment: environment, expectedName: expectedName)
        } catch let e as ConfigError {
            throw CRMSpecError(file: file, path: e.path, reason: e.reason)
        }
    }

    private static func spec(_ root: ConfigMap, environment: [String: String], expectedName: String?) throws -> CRMAdapterSpec {
        try root.only(["name", "style", "description", "settings", "id_property", "object", "api_version", "batch", "budget", "fields", "inbound", "activities", "bulk"])
        let name = try root.string("name")
        guard (1...64).contains(name.utf8.count), name.utf8.allSatisfy(IdentityInput.isTokenByte) else {
            throw ConfigError(path: "name", reason: "must be 1 to 64 letters, digits, - or _")
        }
        if let expectedName, name != expectedName { throw ConfigError(path: "name", reason: "must match the file name (\(expectedName))") }
        let style: CRMAdapterSpec.Style = try root.choice("style")
        var settings = [String: String]()
        if let s = try root.optionalMap("settings") {
            for key in s.keys {
                let raw = try s.string(key)
                if raw.hasPrefix("env:") {
                    let v = String(raw.dropFirst(4))
                    guard let value = environment[v], !value.isEmpty else {
                        throw ConfigError(path: s.child(key), reason: "environment variable \(v) is not set")
                    }
                    settings[key] = value
                } else {
                    settings[key] = raw
                }
            }
        }
        let required: [String] = switch style {
        case .hubspot, .salesforce: ["base_url", "token"]
        case .webhook: ["url", "secret"]
        case .marketo: ["base_url", "client_id", "client_secret"]
        case .eloqua: ["login_url", "site", "user", "password"]
        }
        for key in required where (settings[key] ?? "").isEmpty {
            throw ConfigError(path: "settings.\(key)", reason: "is required for style \(style.rawValue)")
        }
        if style == .eloqua, settings["login_url"] == nil { settings["login_url"] = "https://login.eloqua.com" }
        for key in ["base_url", "url", "login_url"] {
            if let u = settings[key], !(u.hasPrefix("http://") || u.hasPrefix("https://")) {
                throw ConfigError(path: "settings.\(key)", reason: "must be an http(s) URL")
            }
        }
        let idProperty = try root.string(
            "id_property", default: style == .salesforce ? "SCRM_Id__c" : style == .marketo ? "scrmId" : style == .eloqua ? "C_SCRM_Id1" : "scrm_id")
        let maxBatch = CRMAdapterSpec.maxBatch[style]!
        var batchSize = maxBatch
        var maxWait: Int64 = 2_000
        if let b = try root.optionalMap("batch") {
            try b.only(["size", "max_wait_ms"])
            batchSize = try b.int("size", default: maxBatch, range: 1...maxBatch)
            maxWait = Int64(try b.int("max_wait_ms", default: 2_000, range: 0...600_000))
        }
        guard let bm = try root.optionalMap("budget") else { throw ConfigError(path: "budget", reason: "is required (requests per window_ms)") }
        try bm.only(["requests", "window_ms", "concurrent", "daily", "daily_time_zone"])
        var budget = CRMBudget.Limit(
            requests: try bm.int("requests", default: 100, range: 1...1_000_000), windowMs: Int64(try bm.int("window_ms", default: 10_000, range: 100...86_400_000)))
        budget.concurrent = bm.has("concurrent") ? try bm.int("concurrent", default: 10, range: 1...1000) : nil
        budget.daily = bm.has("daily") ? try bm.int("daily", default: 50_000, range: 1...100_000_000) : nil
        if let zone = try bm.optionalString("daily_time_zone") {
            guard let tz = TimeZone(identifier: zone) else { throw ConfigError(path: bm.child("daily_time_zone"), reason: "unknown time zone \(zone) (an IANA name such as America/Chicago)") }
            budget.dailyTimeZone = tz
        }
        guard let fm = try root.optionalMap("fields") else { throw ConfigError(path: "fields", reason: "is required (CRM property: value)") }
        var fields = [(String, CRMValueSource)]()
        // YAML mappings are unordered once loaded; keys sorted keep the request bytes stable.
        for key in fm.keys { fields.append((key, try CRMValueSource.parse(try fm.string(key), path: fm.child(key)))) }
        guard style == .webhook || fields.contains(where: { $0.0 == idProperty && $0.1 == .builtin("id") }) else {
            throw ConfigError(path: "fields", reason: "must map \(idProperty) (the id_property) to id")
        }
        if style == .eloqua {
            guard fields.contains(where: { $0.0 == CRMAdapterSpec.eloquaEmailField }) else {
                throw ConfigError(path: "fields", reason: "must map \(CRMAdapterSpec.eloquaEmailField) (Eloqua keys contacts by email address)")
            }
            guard fields.count <= 100 else { throw ConfigError(path: "fields", reason: "at most 100 fields (an Eloqua import definition's limit)") }
        }
        var bulk = CRMAdapterSpec.Bulk()
        if let b = try root.optionalMap("bulk") {
            guard style == .eloqua else { throw ConfigError(path: "bulk", reason: "bulk imports are Eloqua's (style eloqua)") }
            try b.only(["min_records", "poll_ms", "timeout_ms"])
            bulk.minRecords = try b.int("min_records", default: 100, range: 1...1_000_000)
            bulk.pollMs = Int64(try b.int("poll_ms", default: 2_000, range: 10...600_000))
            bulk.timeoutMs = Int64(try b.int("timeout_ms", default: 3_600_000, range: 1_000...86_400_000))
        }
        var inbound = CRMAdapterSpec.Inbound(stages: [:])
        if let i = try root.optionalMap("inbound") {
            try i.only(["stage", "owner", "tags", "stages"])
            inbound.stageProperty = try i.optionalString("stage")
            inbound.ownerProperty = try i.optionalString("owner")
            inbound.tagsProperty = try i.optionalString("tags")
            if let s = try i.optionalMap("stages") {
                for k in s.keys {
                    let v = try s.string(k)
                    guard !v.isEmpty, v.utf8.allSatisfy(IdentityInput.isTokenByte) else {
                        throw ConfigError(path: s.child(k), reason: "must be a stage name (letters, digits, - or _)")
                    }
                    inbound.stages[k] = v
                }
            }
        }
        if style == .hubspot, (inbound.stageProperty != nil || inbound.ownerProperty != nil || inbound.tagsProperty != nil),
            (settings["webhook_secret"] ?? "").isEmpty
        {
            throw ConfigError(path: "settings.webhook_secret", reason: "is required to verify HubSpot's webhooks (inbound is set)")
        }
        var activities: CRMAdapterSpec.Activities?
        if let a = try root.optionalMap("activities") {
            guard style == .marketo else { throw ConfigError(path: "activities", reason: "custom activities are Marketo's (style marketo)") }
            try a.only(["type_id", "detail_attribute"])
            activities = .init(typeId: try a.int("type_id", default: 0, range: 1...Int(Int32.max)), detailAttribute: try a.string("detail_attribute", default: "detail"))
            if !a.has("type_id") { throw ConfigError(path: a.child("type_id"), reason: "is required (the custom activity type's id)") }
        }
        var spec = CRMAdapterSpec(
            name: name, style: style, summary: try root.string("description", default: ""), settings: settings, idProperty: idProperty,
            object: try root.string("object", default: "Lead"), apiVersion: try root.string("api_version", default: "v60.0"),
            batchSize: batchSize, maxWaitMs: maxWait, budget: budget, fields: fields, inbound: inbound, activities: activities)
        spec.bulk = bulk
        return spec
    }
}
