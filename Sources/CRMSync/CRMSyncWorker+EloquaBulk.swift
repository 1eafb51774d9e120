import Foundation
import GatewayCore
import HTTPTransport
import Logging
import Metrics
import Store

/// An Eloqua batch of `bulk.min_records` or more as one Bulk API 2.0 import: a definition, the rows
/// uploaded, a sync started and polled until it ends (its progress recorded for `GET /api/v1/crm`,
/// the batch's lease renewed meanwhile), then its rejects dead-lettered and its log counts kept.
extension CRMSyncWorker {
    func eloquaBulk(_ taken: [CRMRecord], instance: EloquaInstance, token: String, slot: inout CRMBudget.Slot?) async throws -> [Settled] {
        let base = instance.base
        let allRows = taken.map(eloqua.row)
        let fit = eloqua.fitting(allRows)
        var out = [Settled]()
        for r in taken.dropFirst(max(fit, 1)) { out.append((r.customer, r.seq, .hold(reason: "over the upload size limit: next batch"))) }
        if fit == 0, let r = taken.first {
            return out + [(r.customer, r.seq, .failed(code: "too_large", message: "the row alone is over Eloqua's 32 MB upload limit"))]
        }
        let records = Array(taken.prefix(fit))
        func all(_ result: CRMOutbox.Result) -> [Settled] { out + records.map { ($0.customer, $0.seq, result) } }
        /// A step's answer that is not what the import needs: why, as every record's result.
        func failed(_ step: String, _ r: HTTPResponse) async throws -> [Settled] {
            switch try await verdict(eloqua.answer(r), contactId: nil) {
            case .settled(.synced), .settled(.failed): return all(.retry(reason: "bulk \(step): http_\(r.status)"))
            case .settled(let result), .halt(let result): return all(result)
            }
        }
        do {
            let definitionAnswer = try await eloquaCall(eloqua.importDefinitionRequest(base: base, name: "scrm-gateway \(spec.name) \(token)"), &slot)
            guard let definition = eloqua.uri(definitionAnswer) else { return try await failed("import definition", definitionAnswer) }
            let upload = try await eloquaCall(eloqua.importDataRequest(base: base, definition: definition, rows: Array(allRows.prefix(fit))), &slot)
            guard (200..<300).contains(upload.status) else { return try await failed("upload", upload) }
            let syncAnswer = try await eloquaCall(eloqua.syncRequest(base: base, definition: definition), &slot)
            guard let sync = eloqua.uri(syncAnswer) else { return try await failed("sync", syncAnswer) }
            return out + (try await watch(sync, base: base, records: records))
        } catch let e as TransportError {
            return all(.retry(reason: "bulk import: transport: \(e)"))
        }
    }

    /// Polls the import's sync until it ends, recording its progress; then reads its rejected rows
    /// (each dead-lettered with Eloqua's status code) and its log counts.
    func watch(_ sync: String, base: String, records: [CRMRecord]) async throws -> [Settled] {
        let started = clock()
        var progress = CRMOutbox.BulkImport(sync: sync, status: "pending", records: records.count, startedAt: started)
        try await outbox.noteBulk(progress)
        logger.info("eloqua bulk import", metadata: ["adapter": "\(spec.name)", "sync": "\(sync)", "records": "\(records.count)"])
        let customers = records.map(\.customer)
        let leaseMs = Int64(settings.leaseSeconds) * 1000
        while !["success", "warning", "error"].contains(progress.status) {
            guard clock() - started < spec.bulk.timeoutMs else {
                progress.status = "abandoned"
                progress.finishedAt = clock()
                try await outbox.noteBulk(progress)
                try await outbox.noteError("bulk import \(sync) not finished after \(spec.bulk.timeoutMs / 1000) s", nowMs: clock(), throttled: false)
                return records.map { ($0.customer, $0.seq, .retry(reason: "bulk import \(sync) not finished in time")) }
            }
            try await Task.sleep(for: .milliseconds(spec.bulk.pollMs))
            try await outbox.renewLease(customers, untilMs: clock() + leaseMs)
            var none: CRMBudget.Slot?
            if let r = try? await eloquaCall(eloqua.syncStatusRequest(base: base, sync: sync), &none) {
                if let status = eloqua.syncStatus(r) {
                    if status != progress.status {
                        logger.info("eloqua bulk import", metadata: ["adapter": "\(spec.name)", "sync": "\(sync)", "status": "\(status)"])
                    }
                    progress.status = status
                } else if r.status == 429 {
                    try await budget.pause(ms: spec.budget.windowMs)
                }
            }
            progress.polls += 1
            progress.updatedAt = clock()
            try await outbox.noteBulk(progress)
        }
        var rejected = [String: (code: String, message: String)]()
        if progress.status != "success" {
            var offset = 0
            while true {
                var none: CRMBudget.Slot?
                guard let r = try? await eloquaCall(eloqua.rejectsRequest(base: base, sync: sync, offset: offset), &none), let page = eloqua.rejects(r) else { break }
                rejected.merge(page.rows) { a, _ in a }
                guard page.hasMore, page.count > 0 else { break }
                offset += page.count
            }
        }
        var none: CRMBudget.Slot?
        if let r = try? await eloquaCall(eloqua.logsRequest(base: base, sync: sync), &none) {
            let counts = eloqua.logCounts(r)
            progress.created = counts["ELQ-00004"] ?? 0
            progress.updated = counts["ELQ-00022"] ?? 0
        }
        progress.rejected = rejected.count
        progress.finishedAt = clock()
        try await outbox.noteBulk(progress)
        Counter(label: "scrm_crm_calls_total", dimensions: [("adapter", spec.name), ("result", "bulk_\(progress.status)")]).increment()
        if progress.status == "error", rejected.isEmpty {
            try await outbox.noteError("bulk import \(sync) ended in error", nowMs: clock(), throttled: false)
        }
        return records.map { r in
            if let why = rejected[r.customer] { return (r.customer, r.seq, .failed(code: why.code, message: why.message)) }
            return (r.customer, r.seq, progress.status == "error" ? .retry(reason: "bulk import \(sync) ended in error") : .synced(recordId: nil))
        }
    }
}
