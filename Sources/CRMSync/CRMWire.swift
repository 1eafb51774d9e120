import Foundation
import GatewayCore
import GatewayCrypto
import HTTPTransport
import Store

/// What a CRM said about one batch.
public enum CRMBatchOutcome: Sendable, Equatable {
    /// Per customer: the CRM's record id, or why it refused that record. A customer missing from the
    /// map was not answered for and is retried.
    case answered([String: CRMRecordResult])
    /// Over the CRM's rate limit: pause this long (nil = the budget window).
    case throttled(retryAfterMs: Int64?, detail: String)
    /// Worth retrying later (5xx, timeout, expired credentials).
    case retry(String)
    /// The CRM refused our access token (Marketo 601/602): fetch another and send the batch again,
    /// no attempt spent.
    case unauthorized(String)
}

public enum CRMRecordResult: Sendable, Equatable {
    case ok(recordId: String?)
    case refused(code: String, message: String)
}

/// The request and the reading of the answer for each wire style. Pure: the worker sends.
public struct CRMWire: Sendable {
    public let spec: CRMAdapterSpec

    public init(spec: CRMAdapterSpec) { self.spec = spec }

    /// `token` is the batch's idempotency token; `bearer` the access token of a CRM whose tokens are
    /// fetched (Marketo), else the spec's own.
    public func request(_ records: [CRMRecord], token: String, nowMs: Int64, bearer: String? = nil) -> HTTPRequest {
        switch spec.style {
        case .eloqua:
            preconditionFailure("an Eloqua batch is sent by CRMSyncWorker.sendEloqua (EloquaWire)")
        case .marketo:
            return HTTPRequest(
                method: "POST", url: spec.setting("base_url") + "/rest/v1/leads.json",
                headers: [("Authorization", "Bearer " + (bearer ?? "")), ("Content-Type", "application/json")],
                body: Array(marketoBody(records.map(marketoInput)).utf8), timeoutMs: 30_000)
        case .hubspot:
            let inputs = records.map { r in
                JSONValue.object([
                    "idProperty": .string(spec.idProperty), "id": .string(r.customer),
                    // HubSpot takes every property value as a string.
                    "properties": .object(Dictionary(uniqueKeysWithValues: r.properties(spec).map { ($0.0, .string(Self.text($0.1))) })),
                ])
            }
            return HTTPRequest(
                method: "POST", url: spec.setting("base_url") + "/crm/v3/objects/contacts/batch/upsert",
                headers: [("Authorization", "Bearer " + spec.setting("token")), ("Content-Type", "application/json")],
                body: Array(JSONValue.object(["inputs": .array(inputs)]).text.utf8), timeoutMs: 30_000)
        case .salesforce:
            let list = records.map { r in
                var o = Dictionary(uniqueKeysWithValues: r.properties(spec))
                o["attributes"] = .object(["type": .string(spec.object)])
                return JSONValue.object(o)
            }
            return HTTPRequest(
                method: "PATCH",
                url: spec.setting("base_url") + "/services/data/\(spec.apiVersion)/composite/sobjects/\(spec.object)/\(spec.idProperty)",
                headers: [("Authorization", "Bearer " + spec.setting("token")), ("Content-Type", "application/json")],
                body: Array(JSONValue.object(["allOrNone": .bool(false), "records": .array(list)]).text.utf8), timeoutMs: 30_000)
        case .webhook:
            let customers = records.map { r in
                JSONValue.object([
                    "id": .string(r.customer), "seq": .int(r.seq), "properties": .object(Dictionary(uniqueKeysWithValues: r.properties(spec))),
                    "identities": .array(r.identities.map(JSONValue.string)), "tags": .array(r.tags.map(JSONValue.string)), "recent": .array(r.recent),
                ])
            }
            let body = Array(JSONValue.object(["type": .string("customers.upsert"), "sentAt": .int(nowMs), "customers": .array(customers)]).text.utf8)
            return HTTPRequest(
                method: "POST", url: spec.setting("url"),
                headers: [
                    ("Content-Type", "application/json"), ("Idempotency-Key", token),
                    (CRMSignature.header, CRMSignature.sign(secret: spec.setting("secret"), timestamp: nowMs / 1000, body: body)),
                ],
                body: body, timeoutMs: 30_000)
        }
    }

    /// One lead of a Marketo `input`: the mapped fields, our id in the lookup field.
    func marketoInput(_ r: CRMRecord) -> String {
        JSONValue.object(Dictionary(uniqueKeysWithValues: r.properties(spec))).text
    }

    func marketoBody(_ inputs: [String]) -> String {
        #"{"action":"createOrUpdate","lookupField":"# + JSONValue.string(spec.idProperty).text + #","input":["# + inputs.joined(separator: ",") + "]}"
    }

    /// How many of `records`, from the first, fit in one request body under the style's byte cap
    /// (Marketo: 1 MB); all of them for a style without one. The rest wait for the next batch.
    public func fitting(_ records: [CRMRecord]) -> Int {
        guard let cap = CRMAdapterSpec.maxBody[spec.style] else { return records.count }
        return Self.prefixFitting(records.map { marketoInput($0).utf8.count }, overhead: marketoBody([]).utf8.count, cap: cap)
    }

    static func text(_ v: JSONValue) -> String {
        if case .string(let s) = v { return s }
        return v.scalarText ?? v.text
    }

    public func outcome(_ r: HTTPResponse, records: [CRMRecord]) -> CRMBatchOutcome {
        let body = JSONValue.parse(r.body)
        let retryAfter = Self.retryAfterMs(r)
        if r.status == 429 {
            // HubSpot's daily allowance (policyName DAILY) does not come back within a window: probe hourly.
            let daily = body?.lookup("policyName")?.scalarText == "DAILY"
            return .throttled(retryAfterMs: daily ? 3_600_000 : retryAfter, detail: Self.snippet(r))
        }
        if r.status >= 500 || r.status == 408 { return .retry("http_\(r.status): \(Self.snippet(r))") }
        switch spec.style {
        case .eloqua: preconditionFailure("an Eloqua batch is read by CRMSyncWorker.sendEloqua (EloquaWire)")
        case .marketo: return marketo(r, body: body, records: records)
        case .hubspot: return hubspot(r, body: body, records: records)
        case .salesforce: return salesforce(r, body: body, records: records)
        case .webhook: return webhook(r, body: body, records: records)
        }
    }

    /// 200 (all done) or 207 (some failed): `results[].properties.<idProperty>` and `id`; `errors[]`
    /// name the inputs they concern in `context.ids`. 401 (expired token) is retried; another 4xx for
    /// the whole batch refuses every record in it.
    func hubspot(_ r: HTTPResponse, body: JSONValue?, records: [CRMRecord]) -> CRMBatchOutcome {
        guard r.status == 200 || r.status == 201 || r.status == 207 else {
            if r.status == 401 || r.status == 403 { return .retry("http_\(r.status): \(Self.snippet(r))") }
            return refuseAll(records, code: body?.lookup("category")?.scalarText ?? "http_\(r.status)", message: body?.lookup("message")?.scalarText ?? Self.snippet(r))
        }
        var out = [String: CRMRecordResult]()
        if case .array(let results)? = body?.lookup("results") {
            for res in results {
                guard let ours = res.lookup("properties")?.lookup(spec.idProperty)?.scalarText else { continue }
                out[ours] = .ok(recordId: res.lookup("id")?.scalarText)
            }
        }
        if case .array(let errors)? = body?.lookup("errors") {
            for e in errors {
                let code = e.lookup("category")?.scalarText ?? "ERROR"
                let message = e.lookup("message")?.scalarText ?? ""
                if case .array(let ids)? = e.lookup("context")?.lookup("ids") {
                    for id in ids { if let s = id.scalarText { out[s] = .refused(code: code, message: message) } }
                }
            }
        }
        return .answered(out)
    }

    /// 200 with one result per record, in order: `{id, success, errors[{statusCode, message}]}`.
    /// `REQUEST_LIMIT_EXCEEDED` (403) is throttling; `INVALID_SESSION_ID` (401) is retried.
    func salesforce(_ r: HTTPResponse, body: JSONValue?, records: [CRMRecord]) -> CRMBatchOutcome {
        if r.status != 200 {
            var code = "http_\(r.status)"
            var message = Self.snippet(r)
            if case .array(let a)? = body, let first = a.first {
                code = first.lookup("errorCode")?.scalarText ?? code
                message = first.lookup("message")?.scalarText ?? message
            }
            if code == "REQUEST_LIMIT_EXCEEDED" { return .throttled(retryAfterMs: retryAfterSalesforce, detail: message) }
            if r.status == 401 || code == "INVALID_SESSION_ID" { return .retry("\(code): \(message)") }
            return refuseAll(records, code: code, message: message)
        }
        guard case .array(let results)? = body, results.count == records.count else {
            return .retry("unexpected answer: \(Self.snippet(r))")
        }
        var out = [String: CRMRecordResult]()
        for (rec, res) in zip(records, results) {
            if case .bool(true)? = res.lookup("success") {
                out[rec.customer] = .ok(recordId: res.lookup("id")?.scalarText)
            } else {
                var code = "ERROR"
                var message = ""
                if case .array(let errs)? = res.lookup("errors"), let e = errs.first {
                    code = e.lookup("statusCode")?.scalarText ?? code
                    message = e.lookup("message")?.scalarText ?? ""
                }
                // Record-level lock contention is worth another try; anything else is the record's fault.
                if code == "UNABLE_TO_LOCK_ROW" { continue }
                out[rec.customer] = .refused(code: code, message: message)
            }
        }
        return .answered(out)
    }

    /// Marketo answers 200 for nearly everything; `success` says whether the call ran.
    /// - `success: false`: `errors[0].code` says why the whole call failed: 601/602 the access token
    ///   (fetch another), 606 over 100 calls per 20 s, 615 over 10 at once, 607 the daily quota (until
    ///   it resets at midnight in the quota's time zone), 604/608/611/713 worth another try, anything
    ///   else refuses the batch's records.
    /// - `success: true`: one `result` per input, in order (`seq` when given): `created`/`updated`
    ///   with the lead `id`, or `skipped` with `reasons[{code, message}]` (the record's own fault).
    func marketo(_ r: HTTPResponse, body: JSONValue?, records: [CRMRecord]) -> CRMBatchOutcome {
        if r.status == 413 { return .retry("http_413: over Marketo's 1 MB request limit") }
        guard r.status == 200, let body else { return .retry("http_\(r.status): \(Self.snippet(r))") }
        guard case .bool(true)? = body.lookup("success") else {
            let (code, message) = Self.marketoError(body, r)
            let detail = "\(code) \(message)"
            switch code {
            case "601", "602": return .unauthorized(detail)
            case "606": return .throttled(retryAfterMs: 20_000, detail: detail)
            case "615": return .throttled(retryAfterMs: 1_000, detail: detail)
            case "607": return .throttled(retryAfterMs: CRMBudget.quotaDay(Date(), in: spec.budget.dailyTimeZone).untilResetMs, detail: "daily quota: " + detail)
            case "604", "608", "611", "713", "": return .retry(detail)
            default: return refuseAll(records, code: code, message: message)
            }
        }
        guard case .array(let results)? = body.lookup("result") else { return .retry("unexpected answer: \(Self.snippet(r))") }
        var out = [String: CRMRecordResult]()
        for (i, res) in results.enumerated() {
            let index = res.lookup("seq")?.scalarText.flatMap { Int($0) } ?? i
            guard records.indices.contains(index) else { continue }
            switch res.lookup("status")?.scalarText {
            case "created", "updated": out[records[index].customer] = .ok(recordId: res.lookup("id")?.scalarText)
            case "skipped":
                let (code, message) = Self.marketoReason(res)
                out[records[index].customer] = .refused(code: code, message: message)
            default: continue  // not answered for: retried
            }
        }
        return .answered(out)
    }

    /// Why a Marketo call did nothing: `errors[0]`'s code ('' when absent) and message (the answer's
    /// start when absent).
    static func marketoError(_ body: JSONValue, _ r: HTTPResponse) -> (code: String, message: String) {
        guard case .array(let errors)? = body.lookup("errors"), let e = errors.first else { return ("", snippet(r)) }
        return (e.lookup("code")?.scalarText ?? "", e.lookup("message")?.scalarText ?? snippet(r))
    }

    /// Why Marketo skipped one input: `reasons[0]`'s code (`skipped` when absent) and message.
    static func marketoReason(_ result: JSONValue) -> (code: String, message: String) {
        guard case .array(let reasons)? = result.lookup("reasons"), let first = reasons.first else { return ("skipped", "") }
        return (first.lookup("code")?.scalarText ?? "skipped", first.lookup("message")?.scalarText ?? "")
    }

    /// The 24-hour allowance is spent: try again in an hour.
    var retryAfterSalesforce: Int64 { 3_600_000 }

    /// 2xx = every record taken; a body `{"results": [{"id", "recordId"?, "error"?: {code, message}}]}`
    /// may say more per record. 4xx refuses the batch's records.
    func webhook(_ r: HTTPResponse, body: JSONValue?, records: [CRMRecord]) -> CRMBatchOutcome {
        guard (200..<300).contains(r.status) else {
            return refuseAll(records, code: "http_\(r.status)", message: Self.snippet(r))
        }
        var out = [String: CRMRecordResult]()
        for rec in records { out[rec.customer] = .ok(recordId: nil) }
        if case .array(let results)? = body?.lookup("results") {
            for res in results {
                guard let id = res.lookup("id")?.scalarText, out[id] != nil else { continue }
                if let e = res.lookup("error") {
                    out[id] = .refused(code: e.lookup("code")?.scalarText ?? "ERROR", message: e.lookup("message")?.scalarText ?? "")
                } else {
                    out[id] = .ok(recordId: res.lookup("recordId")?.scalarText)
                }
            }
        }
        return .answered(out)
    }

    func refuseAll(_ records: [CRMRecord], code: String, message: String) -> CRMBatchOutcome {
        .answered(Dictionary(uniqueKeysWithValues: records.map { ($0.customer, CRMRecordResult.refused(code: code, message: message)) }))
    }

    static func snippet(_ r: HTTPResponse) -> String { String(r.text.prefix(300)) }

    /// A `Retry-After` in seconds, as ms; nil without one.
    static func retryAfterMs(_ r: HTTPResponse) -> Int64? {
        r.header("Retry-After").flatMap { Int64($0.trimmingCharacters(in: .whitespaces)) }.map { $0 * 1000 }
    }

    /// How many pieces, from the first, fit under `cap` bytes joined by commas after `overhead` bytes of
    /// envelope (a Marketo body, an Eloqua upload's brackets).
    static func prefixFitting(_ sizes: [Int], overhead: Int, cap: Int) -> Int {
        var size = overhead
        for (i, piece) in sizes.enumerated() {
            size += piece + (i > 0 ? 1 : 0)
            if size > cap { return i }
        }
        return sizes.count
    }
}

/// Stripe-style signature of an outgoing webhook: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
/// "<t>.<body>")>`. The receiver recomputes it and refuses old timestamps.
public enum CRMSignature {
    public static let header = "SCRM-Signature"

    public static func sign(secret: String, timestamp: Int64, body: [UInt8]) -> String {
        "t=\(timestamp),v1=" + Hex.encode(HMAC.sha256(key: Array(secret.utf8), data: Array("\(timestamp).".utf8) + body))
    }

    public enum Failure: Error, Equatable { case missing, malformed, mismatch, stale }

    /// Checks a `SCRM-Signature` header; `windowSeconds` bounds the timestamp's age both ways.
    public static func verify(header: String?, secret: String, body: [UInt8], nowSeconds: Int64, windowSeconds: Int64) throws(Failure) {
        guard let header, !header.isEmpty else { throw .missing }
        var t: Int64?
        var sigs = [String]()
        for part in header.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1)
            guard kv.count == 2 else { continue }
            let k = kv[0].trimmingCharacters(in: .whitespaces)
            if k == "t" { t = Int64(kv[1]) } else if k == "v1" { sigs.append(String(kv[1])) }
        }
        guard let t, !sigs.isEmpty else { throw .malformed }
        guard abs(nowSeconds - t) <= windowSeconds else { throw .stale }
        let expected = Array(Hex.encode(HMAC.sha256(key: Array(secret.utf8), data: Array("\(t).".utf8) + body)).utf8)
        guard sigs.contains(where: { ConstantTime.equals(Array($0.utf8), expected) }) else { throw .mismatch }
    }

    /// HubSpot's v3 signature: base64 HMAC-SHA256(app secret, method + URI + body + timestamp), the
    /// timestamp (ms) no older than `windowSeconds`.
    public static func verifyHubSpotV3(
        signature: String?, timestamp: String?, secret: String, method: String, uri: String, body: [UInt8], nowMs: Int64, windowSeconds: Int64
    ) throws(Failure) {
        guard let signature, let timestamp else { throw .missing }
        guard let ts = Int64(timestamp) else { throw .malformed }
        guard abs(nowMs - ts) <= windowSeconds * 1000 else { throw .stale }
        let mac = HMAC.sha256(key: Array(secret.utf8), data: Array((method + uri).utf8) + body + Array(timestamp.utf8))
        let expected = Array(Data(mac).base64EncodedString().utf8)
        guard ConstantTime.equals(Array(signature.utf8), expected) else { throw .mismatch }
    }

    public static func hubSpotV3(secret: String, method: String, uri: String, body: [UInt8], timestamp: String) -> String {
        Data(HMAC.sha256(key: Array(secret.utf8), data: Array((method + uri).utf8) + body + Array(timestamp.utf8))).base64EncodedString()
    }
}
