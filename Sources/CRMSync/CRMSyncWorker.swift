import Foundation
import GatewayCore
import HTTPTransport
import Logging
import Metrics
import Outbound
import RedisClient
import Store

/// Syncs one CRM adapter: a feeder moves `stream:crm` changes into the adapter's coalescing queue, and
/// `concurrency` senders each take a slot from the shared budget, then a due batch, send it and record
/// the answer per customer. A slot taken when no batch was due is given back.
public final class CRMSyncWorker: Sendable {
    public let spec: CRMAdapterSpec
    let wire: CRMWire
    let outbox: CRMOutbox
    let budget: CRMBudget
    let transport: HTTPTransport
    let settings: GatewayConfig.CRM
    let logger: Logger
    let clock: @Sendable () -> Int64
    let consumer = "\(ProcessInfo.processInfo.hostName)-\(getpid())"
    /// A CRM whose access tokens are fetched (Marketo): one token for every process, in Redis.
    let tokens: AccessTokenManager?
    var tokenAccount: String { "crm:" + spec.name }

    public init(
        spec: CRMAdapterSpec, redis: RedisPool, transport: HTTPTransport, settings: GatewayConfig.CRM, logger: Logger,
        clock: @escaping @Sendable () -> Int64
    ) {
        self.spec = spec
        wire = CRMWire(spec: spec)
        outbox = CRMOutbox(redis: redis, adapter: spec.name)
        budget = CRMBudget(redis: redis, adapter: spec.name, limit: spec.budget)
        self.transport = transport
        self.settings = settings
        self.logger = logger
        self.clock = clock
        if spec.style == .marketo {
            var s = AccessTokenManager.Settings()
            s.dailyBudget = 10_000
            s.refreshMarginMs = 120_000
            tokens = AccessTokenManager(
                redis: redis, transport: transport, baseURL: spec.setting("base_url"),
                accounts: [.init(account: "crm:" + spec.name, appId: spec.setting("client_id"), secret: spec.setting("client_secret"))], settings: s, flavor: .marketo,
                clock: clock)
        } else {
            tokens = nil
        }
    }

    /// The access token for the next call (nil for a CRM whose token is in its spec). A refused fetch
    /// is recorded as the adapter's last error.
    func accessToken() async throws -> String? {
        guard let tokens else { return nil }
        do {
            return try await tokens.token(for: tokenAccount)
        } catch {
            try? await outbox.noteError("access token: \(error)", nowMs: clock(), throttled: false)
            throw error
        }
    }

    var policy: CRMOutbox.RetryPolicy {
        CRMOutbox.RetryPolicy(maxAttempts: settings.maxAttempts, baseMs: settings.retryBaseMs, capMs: settings.retryCapMs)
    }

    /// Runs until cancelled.
    public func run() async {
        try? await outbox.prepare()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.feedLoop() }
            group.addTask { await self.eraseLoop() }
            for _ in 0..<max(settings.concurrency, 0) { group.addTask { await self.sendLoop() } }
        }
    }

    func feedLoop() async {
        while !Task.isCancelled {
            do {
                if try await outbox.feed(consumer: consumer, maxWaitMs: spec.maxWaitMs) == 0 { try await Task.sleep(for: .milliseconds(100)) }
            } catch is CancellationError {
                return
            } catch {
                try? await Task.sleep(for: .milliseconds(500))  // Redis away: entries stay pending
            }
        }
    }

    func sendLoop() async {
        while !Task.isCancelled {
            do {
                let waitMs = try await step()
                if waitMs > 0 { try await Task.sleep(for: .milliseconds(waitMs)) }
            } catch is CancellationError {
                return
            } catch {
                logger.warning("crm sync", metadata: ["adapter": "\(spec.name)", "error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    /// Tells the CRM about erased people, one call at a time from the shared budget.
    func eraseLoop() async {
        while !Task.isCancelled {
            do {
                if try await eraseStep() == false { try await Task.sleep(for: .milliseconds(500)) }
            } catch is CancellationError {
                return
            } catch {
                logger.warning("crm erasure", metadata: ["adapter": "\(spec.name)", "error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    /// Sends one due erasure; false when none was due.
    @discardableResult
    public func eraseStep() async throws -> Bool {
        guard let due = try await outbox.dueErasure(nowMs: clock(), leaseMs: 60_000) else { return false }
        var result: CRMOutbox.ErasureResult
        if spec.style == .eloqua {
            var slot: CRMBudget.Slot? = try await budget.acquire()
            result = try await eloquaErasure(customer: due.customer, recordId: due.recordId, slot: &slot)
            if let slot { try await budget.refund(slot) }
        } else {
            let bearer = try await accessToken()
            let request = wire.erasureRequest(customer: due.customer, recordId: due.recordId, nowMs: clock(), accessToken: bearer)
            let slot = try await budget.acquire()  // the slot is spent by the call
            do {
                result = wire.erasureOutcome(try await call(request, slot: slot))
                if case .retry(_, let reason) = result, let bearer, reason.hasPrefix("601") || reason.hasPrefix("602") {
                    await tokens?.invalidate(account: tokenAccount, failedToken: bearer)
                    result = .retry(afterMs: 0, reason: reason)
                }
            } catch let e as TransportError {
                result = .retry(afterMs: 30_000, reason: "transport: \(e)")
            }
        }
        if case .retry(let after, let reason) = result, reason.hasPrefix("throttled") { try await budget.pause(ms: after) }
        try await outbox.finishErasure(customer: due.customer, recordId: due.recordId, result, nowMs: clock())
        Counter(label: "scrm_crm_erasures_total", dimensions: [("adapter", spec.name), ("result", "\(result)".prefix { $0 != "(" }.description)]).increment()
        return true
    }

    /// A customer of a batch and what became of it.
    typealias Settled = (customer: String, seq: Int64, result: CRMOutbox.Result)

    /// Records the adapter's last error when the CRM refused records of a batch: how many, and the first.
    func noteRefusals(_ results: [Settled]) async throws {
        let refused = results.filter { if case .failed = $0.result { return true } else { return false } }
        if let first = refused.first, case .failed(let code, let message) = first.result {
            try await outbox.noteError("\(refused.count) record(s) refused, e.g. \(first.customer): \(code) \(message)", nowMs: clock(), throttled: false)
        }
    }

    /// One request on a counted slot: counted in the window from now, its place on the wire given back
    /// after, and the call recorded in the adapter's status.
    func call(_ request: HTTPRequest, slot: CRMBudget.Slot) async throws -> HTTPResponse {
        try await budget.stamp(slot)
        let response: HTTPResponse
        do { response = try await transport.send(request) } catch {
            try? await budget.release(slot)
            throw error
        }
        try await budget.release(slot)
        try await outbox.noteCall()
        return response
    }

    /// One budget slot, one batch if one is due; returns how long to wait before the next step.
    public func step() async throws -> Int64 {
        let bearer = try await accessToken()
        let slot = try await budget.acquire()
        let token = UUID().uuidString
        switch try await outbox.take(size: spec.batchSize, leaseMs: Int64(settings.leaseSeconds) * 1000, recent: settings.recentInteractions, token: token) {
        case .wait(let ms):
            try await budget.refund(slot)
            return ms
        case .batch(let token, let snapshots):
            try await send(snapshots.map(CRMRecord.init), token: token, bearer: bearer, slot: slot)
            return 0
        }
    }

    func send(_ taken: [CRMRecord], token: String, bearer: String?, slot: CRMBudget.Slot) async throws {
        if spec.style == .eloqua { return try await sendEloqua(taken, token: token, slot: slot) }
        // Records past the CRM's request size (Marketo: 1 MB) wait for the next batch; one record
        // over it alone can never go.
        let fit = wire.fitting(taken)
        var results = [Settled]()
        for r in taken.dropFirst(max(fit, 1)) { results.append((r.customer, r.seq, .hold(reason: "over the request size limit: next batch"))) }
        if fit == 0, let r = taken.first {
            results.append((r.customer, r.seq, .failed(code: "too_large", message: "the record alone is over the CRM's request size limit")))
        }
        let records = fit == 0 ? [] : Array(taken.prefix(fit))
        guard !records.isEmpty else {
            try await budget.refund(slot)
            try await outbox.finish(token: token, results: results, policy: policy, nowMs: clock())
            return
        }
        let request = wire.request(records, token: token, nowMs: clock(), bearer: bearer)
        let outcome: CRMBatchOutcome
        do {
            let response = try await call(request, slot: slot)
            if let remaining = response.header("X-HubSpot-RateLimit-Remaining").flatMap({ Int($0) }) {
                try await budget.observe(remaining: remaining, intervalMs: response.header("X-HubSpot-RateLimit-Interval-Milliseconds").flatMap { Int64($0) })
            }
            outcome = wire.outcome(response, records: records)
        } catch let e as TransportError {
            outcome = .retry("transport: \(e)")
        }
        switch outcome {
        case .answered(let map):
            for r in records {
                switch map[r.customer] {
                case .ok(let recordId)?: results.append((r.customer, r.seq, .synced(recordId: recordId)))
                case .refused(let code, let message)?: results.append((r.customer, r.seq, .failed(code: code, message: message)))
                case nil: results.append((r.customer, r.seq, .retry(reason: "not_answered")))
                }
            }
            try await noteRefusals(results)
            Counter(label: "scrm_crm_calls_total", dimensions: [("adapter", spec.name), ("result", "answered")]).increment()
        case .throttled(let after, let detail):
            try await budget.pause(ms: after ?? spec.budget.windowMs)
            try await outbox.noteError("throttled: \(detail)", nowMs: clock(), throttled: true)
            results += records.map { ($0.customer, $0.seq, .hold(reason: "throttled")) }
            Counter(label: "scrm_crm_calls_total", dimensions: [("adapter", spec.name), ("result", "throttled")]).increment()
        case .unauthorized(let detail):
            if let bearer { await tokens?.invalidate(account: tokenAccount, failedToken: bearer) }
            try await outbox.noteError("access token refused: \(detail)", nowMs: clock(), throttled: false)
            results += records.map { ($0.customer, $0.seq, .hold(reason: "access token refused")) }
            Counter(label: "scrm_crm_calls_total", dimensions: [("adapter", spec.name), ("result", "unauthorized")]).increment()
        case .retry(let reason):
            try await outbox.noteError(reason, nowMs: clock(), throttled: false)
            results += records.map { ($0.customer, $0.seq, .retry(reason: String(reason.prefix(200)))) }
            Counter(label: "scrm_crm_calls_total", dimensions: [("adapter", spec.name), ("result", "retry")]).increment()
        }
        let synced = try await outbox.finish(token: token, results: results, policy: policy, nowMs: clock())
        Counter(label: "scrm_crm_records_synced_total", dimensions: [("adapter", spec.name)]).increment(by: synced)
        if spec.activities != nil, case .answered(let map) = outcome {
            let leads = records.compactMap { r -> (CRMRecord, String)? in
                if case .ok(let id?)? = map[r.customer] { return (r, id) } else { return nil }
            }
            try await sendActivities(leads, bearer: bearer)
        }
    }

    /// Marketo custom activities for the synced leads' interactions not sent yet, 300 a call from the
    /// same budget. Best effort after the leads are settled: a call that fails leaves those
    /// interactions unmarked, to go with the lead's next sync.
    func sendActivities(_ leads: [(CRMRecord, String)], bearer: String?) async throws {
        let marks = try await outbox.activityMarks(leads.map(\.0.customer))
        var pending = [(customer: String, at: Int64, input: JSONValue)]()
        for (record, leadId) in leads {
            pending += wire.activities(record, leadId: leadId, after: marks[record.customer] ?? 0).map { (record.customer, $0.at, $0.input) }
        }
        for start in stride(from: 0, to: pending.count, by: CRMWire.maxActivitiesPerCall) {
            let chunk = pending[start..<min(start + CRMWire.maxActivitiesPerCall, pending.count)]
            let slot = try await budget.acquire()
            let answer: (added: Int, skipped: [String], failed: CRMBatchOutcome?)
            do {
                answer = wire.activitiesOutcome(try await call(wire.activitiesRequest(chunk.map(\.input), bearer: bearer), slot: slot))
            } catch let e as TransportError {
                try await outbox.noteError("activities: transport: \(e)", nowMs: clock(), throttled: false)
                return
            }
            switch answer.failed {
            case .throttled(let after, let detail)?:
                try await budget.pause(ms: after ?? spec.budget.windowMs)
                try await outbox.noteError("activities throttled: \(detail)", nowMs: clock(), throttled: true)
                return
            case .unauthorized(let detail)?:
                if let bearer { await tokens?.invalidate(account: tokenAccount, failedToken: bearer) }
                try await outbox.noteError("activities: access token refused: \(detail)", nowMs: clock(), throttled: false)
                return
            case .some(let other):
                try await outbox.noteError("activities: \(other)", nowMs: clock(), throttled: false)
                return
            case nil:
                var newest = [String: Int64]()
                for p in chunk { newest[p.customer] = max(newest[p.customer] ?? 0, p.at) }
                try await outbox.markActivities(newest, added: answer.added)
                if let first = answer.skipped.first {
                    try await outbox.noteError("\(answer.skipped.count) activit(ies) skipped, e.g. \(first)", nowMs: clock(), throttled: false)
                }
                Counter(label: "scrm_crm_activities_total", dimensions: [("adapter", spec.name)]).increment(by: answer.added)
            }
        }
    }
}
