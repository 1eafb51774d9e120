import Foundation
import GatewayCrypto
import Hummingbird
import NIOConcurrencyHelpers

/// Marketo's REST API as a loopback fake, with Marketo's documented shapes and limits:
/// - `GET /identity/oauth/token?grant_type=client_credentials&client_id&client_secret`: the current
///   token while it lives (`expires_in` counting down), a new one after; 401 `{"error":
///   "unauthorized"}` for bad credentials.
/// - `POST /rest/v1/leads.json` `{"action": "createOrUpdate", "lookupField", "input": [...]}`: HTTP 200
///   for nearly everything, `success` saying whether the call ran. Response-level errors (the call
///   did nothing): 600/601/602 no, an unknown or an expired token (not counted against any limit),
///   615 over `concurrent` calls at once, 606 over `rateLimit` calls per `windowMs` (Marketo: 100 per
///   20 s), 607 the daily quota spent, 1003 over 300 records. A body over 1 MB is refused 413.
///   Otherwise one result per input, in order, with `seq`: `created`/`updated` and the lead `id`, or
///   `skipped` with `reasons` (no lookup value; an email without `@`).
/// - `POST /rest/v1/leads/delete.json` `{"input": [{"id"}]}` and `GET /rest/v1/leads.json?filterType&
///   filterValues` for erasures.
/// - `GET /rest/v1/stats/usage.json`: today's calls.
public final class MarketoFake: Sendable {
    public let crm = FakeCRMState()
    let clientId: String
    let clientSecret: String
    let rateLimit: Int
    let windowMs: Int
    let concurrent: Int
    let delayMs: Int
    /// The custom activity types the instance has.
    let activityTypes: Set<Int>

    struct State {
        var token = ""
        var tokenExpiresAt = Date.distantPast
        var tokensIssued = 0
        var dailyQuota: Int
        var callsToday = 0
        var onTheWire = 0
        var mostAtOnce = 0
        var refused: [String: Int] = [:]
        var deleted: [String] = []
        var activities: [Activity] = []
    }

    /// One custom activity as Marketo stored it.
    public struct Activity: Sendable, Equatable {
        public let leadId: String
        public let date: String
        public let typeId: Int
        public let primary: String
        /// Attribute name -> value.
        public let attributes: [String: String]
    }

    let state: NIOLockedValueBox<State>
    let tokenSeconds: Int

    public init(clientId: String, clientSecret: String, tokenSeconds: Int = 3600, rateLimit: Int = 100, windowMs: Int = 20_000, concurrent: Int = 10, dailyQuota: Int = 50_000, delayMs: Int = 0, activityTypes: Set<Int> = [100001]) {
        self.activityTypes = activityTypes
        self.clientId = clientId
        self.clientSecret = clientSecret
        self.tokenSeconds = tokenSeconds
        self.rateLimit = rateLimit
        self.windowMs = windowMs
        self.concurrent = concurrent
        self.delayMs = delayMs
        state = NIOLockedValueBox(State(dailyQuota: dailyQuota))
    }

    /// Tokens issued so far.
    public var tokensIssued: Int { state.withLockedValue { $0.tokensIssued } }
    /// The most calls that were on the wire at once.
    public var mostAtOnce: Int { state.withLockedValue { $0.mostAtOnce } }
    /// Response-level refusals by code (601, 602, 606, 607, 615, ...).
    public var refused: [String: Int] { state.withLockedValue { $0.refused } }
    /// Calls counted against today's quota.
    public var callsToday: Int { state.withLockedValue { $0.callsToday } }
    /// Custom activities added, in order.
    public var activities: [Activity] { state.withLockedValue { $0.activities } }
    /// Lead ids deleted, in order.
    public var deleted: [String] { state.withLockedValue { $0.deleted } }

    /// The current token expires now (its holders get 602 from their next call).
    public func expireToken() { state.withLockedValue { $0.tokenExpiresAt = .distantPast } }
    /// Sets the daily quota (a test spends it quickly).
    public func setDailyQuota(_ n: Int) { state.withLockedValue { $0.dailyQuota = n } }

    public func add(to router: Router<BasicRequestContext>) {
        router.get("/identity/oauth/token") { request, _ -> Response in
            let q = request.uri.queryParameters
            guard q.get("grant_type") == "client_credentials", let id = q.get("client_id"), let secret = q.get("client_secret"),
                ConstantTime.equals(String(id), self.clientId), ConstantTime.equals(String(secret), self.clientSecret)
            else {
                return jsonResponse(["error": "unauthorized", "error_description": "Bad client credentials"], status: 401)
            }
            let (token, left) = self.state.withLockedValue { s -> (String, Int) in
                let now = Date()
                if s.tokenExpiresAt <= now {
                    s.token = UUID().uuidString.lowercased() + ":ab"
                    s.tokenExpiresAt = now.addingTimeInterval(Double(self.tokenSeconds))
                    s.tokensIssued += 1
                }
                return (s.token, max(Int(s.tokenExpiresAt.timeIntervalSince(now)), 0))
            }
            return jsonResponse(["access_token": token, "token_type": "bearer", "expires_in": left, "scope": "api@example.com"])
        }
        router.post("/rest/v1/leads.json") { request, _ -> Response in
            let buffer = try await request.body.collect(upTo: 1 << 24)
            guard buffer.readableBytes <= 1_048_576 else {
                self.state.withLockedValue { $0.refused["413", default: 0] += 1 }
                return Response(status: .init(code: 413, reasonPhrase: "Request Entity Too Large"))
            }
            return try await self.call(request) { self.upsert(buffer) }
        }
        // Custom activities of the types in `activityTypes`, for existing leads, up to 300 a call.
        router.post("/rest/v1/activities/external.json") { request, _ -> Response in
            let buffer = try await request.body.collect(upTo: 1 << 24)
            guard buffer.readableBytes <= 1_048_576 else { return Response(status: .init(code: 413, reasonPhrase: "Request Entity Too Large")) }
            return try await self.call(request) {
                guard let body = jsonObject(buffer), let input = body["input"] as? [[String: Any]] else { return Self.failure("609", "Invalid JSON") }
                guard input.count <= 300 else { return Self.failure("1003", "Too many records in input: \(input.count), the limit is 300") }
                let leads = Set(self.crm.records.values.map(\.recordId))
                let results: [[String: Any]] = input.enumerated().map { i, a in
                    let lead = (a["leadId"] as? NSNumber).map { String($0.int64Value) } ?? ""
                    guard leads.contains(lead) else { return ["seq": i, "status": "skipped", "reasons": [["code": "1004", "message": "Lead not found"]]] }
                    guard let type = (a["activityTypeId"] as? NSNumber)?.intValue, self.activityTypes.contains(type) else {
                        return ["seq": i, "status": "skipped", "reasons": [["code": "1003", "message": "Invalid activityTypeId"]]]
                    }
                    guard let date = a["activityDate"] as? String, let primary = a["primaryAttributeValue"] as? String else {
                        return ["seq": i, "status": "skipped", "reasons": [["code": "1003", "message": "activityDate and primaryAttributeValue are required"]]]
                    }
                    var attributes = [String: String]()
                    for attr in a["attributes"] as? [[String: Any]] ?? [] {
                        if let name = attr["name"] as? String { attributes[name] = attr["value"] as? String ?? "" }
                    }
                    let activity = Activity(leadId: lead, date: date, typeId: type, primary: primary, attributes: attributes)
                    let n = self.state.withLockedValue { s -> Int in
                        s.activities.append(activity)
                        return s.activities.count
                    }
                    return ["seq": i, "id": n, "status": "added"]
                }
                return Self.success(results)
            }
        }
        router.post("/rest/v1/leads/delete.json") { request, _ -> Response in
            let buffer = try await request.body.collect(upTo: 1 << 20)
            return try await self.call(request) {
                guard let body = jsonObject(buffer), let input = body["input"] as? [[String: Any]] else { return Self.failure("609", "Invalid JSON") }
                let results: [[String: Any]] = input.enumerated().map { i, e in
                    let id = (e["id"] as? NSNumber).map { String($0.int64Value) } ?? (e["id"] as? String) ?? ""
                    guard self.crm.erase(recordId: id) else {
                        return ["seq": i, "status": "skipped", "reasons": [["code": "1004", "message": "Lead not found"]]]
                    }
                    self.state.withLockedValue { $0.deleted.append(id) }
                    return ["seq": i, "id": Int(id) ?? 0, "status": "deleted"]
                }
                return Self.success(results)
            }
        }
        router.get("/rest/v1/leads.json") { request, _ -> Response in
            try await self.call(request) {
                let q = request.uri.queryParameters
                guard let field = q.get("filterType").map({ String($0) }), let values = q.get("filterValues").map({ String($0) }) else {
                    return Self.failure("1003", "filterType and filterValues are required")
                }
                let wanted = Set(values.split(separator: ",").map { String($0) })
                let found: [[String: Any]] = self.crm.records.values.filter { wanted.contains($0.properties[field] ?? "") }.map { ["id": Int($0.recordId) ?? 0] }
                return Self.success(found)
            }
        }
        router.get("/rest/v1/stats/usage.json") { request, _ -> Response in
            guard self.tokenProblem(request) == nil else { return jsonResponse(Self.failure("601", "Access token invalid")) }
            let today = self.state.withLockedValue { $0.callsToday }
            let day = String(ISO8601DateFormatter().string(from: Date()).prefix(10))
            return jsonResponse(Self.success([["date": day + "T00:00:00Z", "total": today, "users": [] as [Any]]]))
        }
        router.get("/_fakes/marketo") { _, _ in
            var summary = self.crm.summary
            summary["tokensIssued"] = self.tokensIssued
            summary["mostAtOnce"] = self.mostAtOnce
            summary["refused"] = self.refused
            summary["callsToday"] = self.callsToday
            return jsonResponse(summary)
        }
    }

    /// One REST call: the token checked (not counted), then the concurrency cap, the rate window and
    /// the daily quota, in that order; `body` answers a call that passed them all.
    func call(_ request: Request, body: @Sendable () -> [String: Any]) async throws -> Response {
        if let problem = tokenProblem(request) { return refuse(problem.0, problem.1) }
        let atOnce = state.withLockedValue { s -> Int in
            s.onTheWire += 1
            s.mostAtOnce = max(s.mostAtOnce, s.onTheWire)
            return s.onTheWire
        }
        defer { state.withLockedValue { $0.onTheWire -= 1 } }
        guard atOnce <= concurrent else { return refuse("615", "Concurrent access limit reached") }
        guard crm.admit(limit: rateLimit, windowMs: windowMs).ok else { return refuse("606", "Max rate limit '\(rateLimit)' exceeded with in '\(windowMs / 1000)' secs") }
        let overQuota = state.withLockedValue { s -> Bool in
            guard s.callsToday < s.dailyQuota else { return true }
            s.callsToday += 1
            return false
        }
        guard !overQuota else { return refuse("607", "Daily quota reached") }
        let answer = body()
        if delayMs > 0 { try await Task.sleep(for: .milliseconds(delayMs)) }
        return jsonResponse(answer)
    }

    /// 600 (no token), 601 (not one we issued), 602 (expired), or nil.
    func tokenProblem(_ request: Request) -> (String, String)? {
        guard let auth = request.headers[.authorization], auth.hasPrefix("Bearer "), auth.count > 7 else { return ("600", "Access token not specified") }
        let token = String(auth.dropFirst(7))
        return state.withLockedValue { s in
            guard !s.token.isEmpty, ConstantTime.equals(token, s.token) else { return ("601", "Access token invalid") }
            return s.tokenExpiresAt > Date() ? nil : ("602", "Access token expired")
        }
    }

    func refuse(_ code: String, _ message: String) -> Response {
        state.withLockedValue { $0.refused[code, default: 0] += 1 }
        return jsonResponse(Self.failure(code, message))
    }

    func upsert(_ buffer: ByteBuffer) -> [String: Any] {
        guard let body = jsonObject(buffer), let input = body["input"] as? [[String: Any]] else { return Self.failure("609", "Invalid JSON") }
        let action = body["action"] as? String ?? "createOrUpdate"
        guard action == "createOrUpdate" else { return Self.failure("1003", "Action '\(action)' is not supported here") }
        guard input.count <= 300 else { return Self.failure("1003", "Too many records in input: \(input.count), the limit is 300") }
        let lookup = body["lookupField"] as? String ?? "email"
        crm.noteBatch(input.count)
        var results = [[String: Any]]()
        for (i, lead) in input.enumerated() {
            var fields = [String: String]()
            for (k, v) in lead { fields[k] = (v as? String) ?? (v as? NSNumber)?.stringValue ?? "\(v)" }
            guard let key = fields[lookup], !key.isEmpty else {
                results.append(["seq": i, "status": "skipped", "reasons": [["code": "1003", "message": "Value for lookup field '\(lookup)' is required"]]])
                continue
            }
            if let email = fields["email"], !email.isEmpty, !email.contains("@") {
                results.append(["seq": i, "status": "skipped", "reasons": [["code": "1003", "message": "Value for field 'email' is invalid: \(email)"]]])
                continue
            }
            let (id, created) = crm.upsert(key: key, properties: fields)
            results.append(["seq": i, "id": Int(id) ?? 0, "status": created ? "created" : "updated"])
        }
        return Self.success(results)
    }

    static func requestId() -> String { String(format: "%x#%llx", Int.random(in: 0x1000...0xffff), UInt64(Date().timeIntervalSince1970 * 1000)) }

    static func success(_ result: [[String: Any]]) -> [String: Any] { ["requestId": requestId(), "success": true, "result": result] }

    static func failure(_ code: String, _ message: String) -> [String: Any] {
        ["requestId": requestId(), "success": false, "errors": [["code": code, "message": message]]]
    }
}
