import Foundation
import GatewayCrypto
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers

/// What a fake CRM holds: one record per id-property value (an upsert creates or updates it), the
/// history of each record's writes (to check ordering), and counts of calls and refusals.
public final class FakeCRMState: Sendable {
    public struct Record: Sendable, Equatable {
        public let recordId: String
        public var properties: [String: String]
        public var writes: Int
    }

    struct State {
        var records: [String: Record] = [:]
        var history: [String: [[String: String]]] = [:]
        var calls = 0
        var throttled = 0
        var largestBatch = 0
        var callTimes: [Double] = []
        var nextId = 901
        var outOfOrder = 0
        var firstServedAt: Int64 = 0
        var lastServedAt: Int64 = 0
        var erased: [String] = []
    }

    let state = NIOLockedValueBox(State())

    public init() {}

    public var records: [String: Record] { state.withLockedValue { $0.records } }
    /// Every write of a record's properties, oldest first.
    public func history(_ key: String) -> [[String: String]] { state.withLockedValue { $0.history[key] ?? [] } }
    /// Calls that reached the upsert endpoint (refused ones included).
    public var calls: Int { state.withLockedValue { $0.calls } }
    /// Calls answered 429 / REQUEST_LIMIT_EXCEEDED.
    public var throttled: Int { state.withLockedValue { $0.throttled } }
    public var largestBatch: Int { state.withLockedValue { $0.largestBatch } }
    /// Arrival times (seconds, monotonic) of the calls that were served.
    public var callTimes: [Double] { state.withLockedValue { $0.callTimes } }
    /// Webhook deliveries whose `seq` was older than one already received for that customer.
    public var outOfOrder: Int { state.withLockedValue { $0.outOfOrder } }

    /// Counts a call against a rolling window of `limit` calls per `windowMs`; false = over the limit.
    func admit(limit: Int, windowMs: Int) -> (ok: Bool, remaining: Int) {
        let now = Double(DispatchTime.now().uptimeNanoseconds) / 1e9
        return state.withLockedValue { s in
            s.calls += 1
            s.callTimes.removeAll { $0 <= now - Double(windowMs) / 1000 }
            guard s.callTimes.count < limit else {
                s.throttled += 1
                return (false, 0)
            }
            s.callTimes.append(now)
            let wall = Int64(Date().timeIntervalSince1970 * 1000)
            if s.firstServedAt == 0 { s.firstServedAt = wall }
            s.lastServedAt = wall
            return (true, limit - s.callTimes.count)
        }
    }

    func upsert(key: String, properties: [String: String], seq: Int64? = nil) -> (recordId: String, created: Bool) {
        state.withLockedValue { s in
            if let seq, let last = s.history[key]?.last?["seq"].flatMap({ Int64($0) }), seq < last { s.outOfOrder += 1 }
            var p = properties
            if let seq { p["seq"] = String(seq) }
            s.history[key, default: []].append(p)
            if var r = s.records[key] {
                for (k, v) in properties { r.properties[k] = v }
                r.writes += 1
                s.records[key] = r
                return (r.recordId, false)
            }
            let id = String(s.nextId)
            s.nextId += 1
            s.records[key] = Record(recordId: id, properties: properties, writes: 1)
            return (id, true)
        }
    }

    /// Deletes the record held under `key` (our id) or with `recordId`, and its history; false when
    /// there was none.
    func erase(key: String? = nil, recordId: String? = nil) -> Bool {
        state.withLockedValue { s in
            guard let k = key.flatMap({ s.records[$0] != nil ? $0 : nil }) ?? s.records.first(where: { $0.value.recordId == recordId })?.key else {
                return false
            }
            s.records[k] = nil
            s.history[k] = nil
            s.erased.append(k)
            return true
        }
    }

    /// Our ids whose record an erasure deleted, in order.
    public var erased: [String] { state.withLockedValue { $0.erased } }

    func noteBatch(_ n: Int) { state.withLockedValue { $0.largestBatch = max($0.largestBatch, n) } }

    public var summary: [String: Any] {
        state.withLockedValue { s in
            [
                "records": s.records.count, "calls": s.calls, "throttled": s.throttled, "largestBatch": s.largestBatch, "outOfOrder": s.outOfOrder,
                "writes": s.records.values.map(\.writes).reduce(0, +), "erased": s.erased.count, "firstServedAt": s.firstServedAt, "lastServedAt": s.lastServedAt,
            ]
        }
    }
}

/// HubSpot's CRM v3 contacts batch upsert as a loopback fake: bearer token; 1 to 100 inputs with
/// `idProperty` and `id`, no duplicate ids; the rolling ten-second limit (answered 429 with
/// `policyName: TEN_SECONDLY_ROLLING`) and the `X-HubSpot-RateLimit-*` headers on every answer;
/// `email` validated per record (207 with `errors[].context.ids`); 200 with `results[]` otherwise.
public final class HubSpotFake: Sendable {
    public let crm = FakeCRMState()
    public let ledger = FakeLedger()
    let token: String
    let limit: Int
    let windowMs: Int
    /// Each answer leaves this long after the records are written (a process can die in between).
    let delayMs: Int

    public init(token: String, limit: Int = 100, windowMs: Int = 10_000, delayMs: Int = 0) {
        self.token = token
        self.limit = limit
        self.windowMs = windowMs
        self.delayMs = delayMs
    }

    public func add(to router: Router<BasicRequestContext>) {
        router.post("/crm/v3/objects/contacts/batch/upsert") { request, _ -> Response in
            let buffer = try await request.body.collect(upTo: 1 << 24)
            let (ok, remaining) = self.crm.admit(limit: self.limit, windowMs: self.windowMs)
            var headers = [
                "X-HubSpot-RateLimit-Max": String(self.limit), "X-HubSpot-RateLimit-Remaining": String(remaining),
                "X-HubSpot-RateLimit-Interval-Milliseconds": String(self.windowMs),
            ]
            guard ok else {
                return jsonResponse(
                    [
                        "status": "error", "message": "You have reached your ten_secondly_rolling limit.", "errorType": "RATE_LIMIT",
                        "correlationId": UUID().uuidString.lowercased(), "policyName": "TEN_SECONDLY_ROLLING",
                    ], status: 429, headers: headers)
            }
            if let forced = self.ledger.begin("hubspot.upsert") { return forced.response }
            guard let auth = request.headers[.authorization], ConstantTime.equals(auth, "Bearer " + self.token) else {
                return Self.error("Authentication credentials not found.", category: "INVALID_AUTHENTICATION", status: 401, headers: headers)
            }
            guard let body = jsonObject(buffer), let inputs = body["inputs"] as? [[String: Any]] else {
                return Self.error("Invalid input JSON on line 1", category: "VALIDATION_ERROR", headers: headers)
            }
            guard (1...100).contains(inputs.count) else {
                return Self.error("Batch input must contain between 1 and 100 inputs, but \(inputs.count) were provided.", category: "VALIDATION_ERROR", headers: headers)
            }
            self.crm.noteBatch(inputs.count)
            var seen = Set<String>()
            for input in inputs {
                guard let id = input["id"] as? String, let prop = input["idProperty"] as? String, !prop.isEmpty else {
                    return Self.error("Each input needs id and idProperty.", category: "VALIDATION_ERROR", headers: headers)
                }
                guard seen.insert(id).inserted else {
                    return Self.error("Duplicate IDs found in batch input: [\(id)]. IDs must be unique", category: "VALIDATION_ERROR", headers: headers)
                }
                guard let props = input["properties"] as? [String: Any], props.values.allSatisfy({ $0 is String }) else {
                    return Self.error("Property values must be strings.", category: "VALIDATION_ERROR", headers: headers)
                }
            }
            var results = [[String: Any]]()
            var errors = [[String: Any]]()
            let now = ISO8601DateFormatter().string(from: Date())
            for input in inputs {
                let id = input["id"] as! String
                let prop = input["idProperty"] as! String
                var props = input["properties"] as! [String: String]
                if let email = props["email"], !email.isEmpty, !email.contains("@") {
                    errors.append([
                        "status": "error", "category": "VALIDATION_ERROR", "message": "Property values were not valid: email \"\(email)\" is invalid",
                        "context": ["ids": [id]],
                    ])
                    continue
                }
                props[prop] = id
                let (recordId, created) = self.crm.upsert(key: id, properties: props)
                results.append(["id": recordId, "properties": props, "new": created, "archived": false, "createdAt": now, "updatedAt": now])
            }
            if self.delayMs > 0 { try await Task.sleep(for: .milliseconds(self.delayMs)) }
            var answer: [String: Any] = ["status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now]
            if !errors.isEmpty {
                answer["errors"] = errors
                answer["numErrors"] = errors.count
            }
            headers["Content-Type"] = "application/json;charset=utf-8"
            return jsonResponse(answer, status: errors.isEmpty ? 200 : 207, headers: headers)
        }
        // GDPR delete: {"objectId": <record id>}, or with "idProperty" (email or a unique property); 204, or 404 when unknown.
        router.post("/crm/v3/objects/contacts/gdpr-delete") { request, _ -> Response in
            let buffer = try await request.body.collect(upTo: 1 << 20)
            let (ok, remaining) = self.crm.admit(limit: self.limit, windowMs: self.windowMs)
            let headers = ["X-HubSpot-RateLimit-Max": String(self.limit), "X-HubSpot-RateLimit-Remaining": String(remaining)]
            guard ok else { return Self.error("You have reached your ten_secondly_rolling limit.", category: "RATE_LIMIT", status: 429, headers: headers) }
            guard let auth = request.headers[.authorization], ConstantTime.equals(auth, "Bearer " + self.token) else {
                return Self.error("Authentication credentials not found.", category: "INVALID_AUTHENTICATION", status: 401, headers: headers)
            }
            guard let body = jsonObject(buffer), let objectId = body["objectId"] as? String, !objectId.isEmpty else {
                return Self.error("objectId is required", category: "VALIDATION_ERROR", headers: headers)
            }
            let found: Bool
            switch body["idProperty"] as? String {
            case nil: found = self.crm.erase(recordId: objectId)
            case "email"?: found = self.crm.erase(key: self.crm.records.first { $0.value.properties["email"] == objectId }?.key)
            case let property?: found = self.crm.erase(key: self.crm.records.first { $0.value.properties[property] == objectId }?.key)
            }
            guard found else { return Self.error("resource not found", category: "OBJECT_NOT_FOUND", status: 404, headers: headers) }
            return Response(status: .noContent)
        }
        router.get("/_fakes/hubspot") { _, _ in jsonResponse(self.crm.summary) }
    }

    static func error(_ message: String, category: String, status: Int = 400, headers: [String: String]) -> Response {
        jsonResponse(["status": "error", "message": message, "category": category, "correlationId": UUID().uuidString.lowercased()], status: status, headers: headers)
    }
}

/// Salesforce's sObject Collections upsert (`PATCH /services/data/vXX.X/composite/sobjects/{object}/
/// {externalIdField}`) as a loopback fake: bearer token (401 `INVALID_SESSION_ID`), at most 200
/// records each naming its `attributes.type`, a daily request allowance answered 403
/// `REQUEST_LIMIT_EXCEEDED`, and per-record results in order (`LastName` and `Company` are required
/// on a new Lead: `REQUIRED_FIELD_MISSING`).
public final class SalesforceFake: Sendable {
    public let crm = FakeCRMState()
    public let ledger = FakeLedger()
    let token: String
    let dailyLimit: Int

    public init(token: String, dailyLimit: Int = 100_000) {
        self.token = token
        self.dailyLimit = dailyLimit
    }

    public func add(to router: Router<BasicRequestContext>) {
        router.patch("/services/data/:version/composite/sobjects/:object/:field") { request, context -> Response in
            let buffer = try await request.body.collect(upTo: 1 << 24)
            let object = context.parameters.get("object") ?? ""
            let field = context.parameters.get("field") ?? ""
            guard self.crm.admit(limit: self.dailyLimit, windowMs: 86_400_000).ok else {
                return Self.errors([("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")], status: 403)
            }
            if let forced = self.ledger.begin("salesforce.upsert") { return forced.response }
            guard let auth = request.headers[.authorization], ConstantTime.equals(auth, "Bearer " + self.token) else {
                return Self.errors([("INVALID_SESSION_ID", "Session expired or invalid")], status: 401)
            }
            guard let body = jsonObject(buffer), let records = body["records"] as? [[String: Any]] else {
                return Self.errors([("JSON_PARSER_ERROR", "Cannot deserialize instance of the request body")], status: 400)
            }
            guard records.count <= 200 else {
                return Self.errors([("EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call")], status: 400)
            }
            self.crm.noteBatch(records.count)
            var out = [[String: Any]]()
            for r in records {
                guard (r["attributes"] as? [String: Any])?["type"] as? String == object else {
                    out.append(Self.failure("INVALID_TYPE", "attributes.type must be \(object)", fields: []))
                    continue
                }
                guard let key = r[field] as? String, !key.isEmpty else {
                    out.append(Self.failure("MISSING_ARGUMENT", "\(field) not specified", fields: [field]))
                    continue
                }
                var props = [String: String]()
                for (k, v) in r where k != "attributes" { props[k] = (v as? String) ?? "\(v)" }
                let exists = self.crm.records[key] != nil
                let missing = ["LastName", "Company"].filter { (props[$0] ?? "").isEmpty }
                if !exists, !missing.isEmpty {
                    out.append(Self.failure("REQUIRED_FIELD_MISSING", "Required fields are missing: [\(missing.joined(separator: ", "))]", fields: missing))
                    continue
                }
                let (id, created) = self.crm.upsert(key: key, properties: props)
                out.append(["id": "00Q" + String(repeating: "0", count: 9) + id, "success": true, "errors": [Any](), "created": created])
            }
            let data = (try? JSONSerialization.data(withJSONObject: out, options: [.sortedKeys])) ?? Data("[]".utf8)
            return FakeAnswer(status: 200, json: String(decoding: data, as: UTF8.self)).response
        }
        // Delete by record id, or by external id (`/sobjects/{object}/{field}/{value}`): 204, or 404 NOT_FOUND.
        let delete: @Sendable (Request, String?, String?) -> Response = { request, key, recordId in
            guard self.crm.admit(limit: self.dailyLimit, windowMs: 86_400_000).ok else {
                return Self.errors([("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")], status: 403)
            }
            guard let auth = request.headers[.authorization], ConstantTime.equals(auth, "Bearer " + self.token) else {
                return Self.errors([("INVALID_SESSION_ID", "Session expired or invalid")], status: 401)
            }
            let sfid = recordId.map { String($0.drop { $0 == "0" || $0 == "Q" }) }
            guard self.crm.erase(key: key, recordId: sfid) else { return Self.errors([("NOT_FOUND", "The requested resource does not exist")], status: 404) }
            return Response(status: .noContent)
        }
        router.delete("/services/data/:version/sobjects/:object/:key") { request, context in delete(request, nil, context.parameters.get("key")) }
        router.delete("/services/data/:version/sobjects/:object/:key/:value") { request, context in delete(request, context.parameters.get("value"), nil) }
        router.get("/_fakes/salesforce") { _, _ in jsonResponse(self.crm.summary) }
    }

    static func failure(_ code: String, _ message: String, fields: [String]) -> [String: Any] {
        ["success": false, "errors": [["statusCode": code, "message": message, "fields": fields]]]
    }

    static func errors(_ list: [(String, String)], status: Int) -> Response {
        let items = list.map { ["errorCode": $0.0, "message": $0.1] }
        let data = (try? JSONSerialization.data(withJSONObject: items, options: [.sortedKeys])) ?? Data("[]".utf8)
        return FakeAnswer(status: status, json: String(decoding: data, as: UTF8.self)).response
    }
}

/// A receiver of the generic signed webhook: checks `SCRM-Signature` (HMAC-SHA256 over
/// "<t>.<body>", five-minute window), keeps the newest `seq` per customer (counting older ones that
/// arrive late) and answers a record id per customer.
public final class CRMWebhookReceiver: Sendable {
    public let crm = FakeCRMState()
    public let ledger = FakeLedger()
    let secret: String
    /// Each answer takes up to this long (random), so concurrent batches can overtake each other.
    let jitterMs: Int

    public init(secret: String, jitterMs: Int = 0) {
        self.secret = secret
        self.jitterMs = jitterMs
    }

    public func add(to router: Router<BasicRequestContext>) {
        router.post("/crm-hook") { request, _ -> Response in
            let buffer = try await request.body.collect(upTo: 1 << 24)
            _ = self.crm.admit(limit: Int.max, windowMs: 1000)
            if let forced = self.ledger.begin("webhook.post") { return forced.response }
            let body = Array(buffer: buffer)
            guard let header = request.headers[HTTPField.Name("SCRM-Signature")!], Self.valid(header, secret: self.secret, body: body) else {
                return jsonResponse(["error": "bad signature"], status: 401)
            }
            if let doc = jsonObject(buffer), doc["type"] as? String == "customer.erased", let id = (doc["customer"] as? [String: Any])?["id"] as? String {
                _ = self.crm.erase(key: id)
                return jsonResponse(["ok": true])
            }
            guard let doc = jsonObject(buffer), let customers = doc["customers"] as? [[String: Any]] else {
                return jsonResponse(["error": "bad body"], status: 400)
            }
            if self.jitterMs > 0 { try await Task.sleep(for: .milliseconds(Int.random(in: 0...self.jitterMs))) }
            var results = [[String: Any]]()
            for c in customers {
                guard let id = c["id"] as? String else { continue }
                let props = ((c["properties"] as? [String: Any]) ?? [:]).mapValues { ($0 as? String) ?? "\($0)" }
                let seq = (c["seq"] as? NSNumber)?.int64Value
                let (recordId, _) = self.crm.upsert(key: id, properties: props, seq: seq)
                results.append(["id": id, "recordId": "wh-" + recordId])
            }
            return jsonResponse(["results": results])
        }
    }

    static func valid(_ header: String, secret: String, body: [UInt8]) -> Bool {
        var t: String?
        var v1: String?
        for part in header.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
            if kv.count == 2, kv[0] == "t" { t = kv[1] }
            if kv.count == 2, kv[0] == "v1" { v1 = kv[1] }
        }
        guard let t, let v1, let ts = Double(t), abs(Date().timeIntervalSince1970 - ts) < 300 else { return false }
        let mac = Hex.encode(HMAC.sha256(key: Array(secret.utf8), data: Array((t + ".").utf8) + body))
        return ConstantTime.equals(mac, v1)
    }
}
