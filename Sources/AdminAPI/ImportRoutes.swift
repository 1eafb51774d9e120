import GatewayCore
import HTTPAPI
import Hummingbird
import Ingress
import NIOCore
import Store

/// `POST /api/v1/customers/import` (CSV or JSONL, streamed), `GET /api/v1/imports[/{id}]`.
struct ImportRoutes {
    let store: CustomerImportStore
    let attributes: CustomerAttributes
    let accounts: Set<String>
    let maxBytes: Int
    let clock: @Sendable () -> Int64

    /// Rows spooled per chunk (one function call applies one chunk).
    static let chunkRows = 1000

    func register<Context: RequestContext>(on group: DeclaredRoutes<Context>) {
        group.post("/customers/import", .importsWrite) { request, _ in try await storage { try await upload(request) } }
        group.get("/imports", .importsRead) { request, _ in
            try await storage {
                let query = try PageQuery(request, defaultLimit: 50, maxLimit: 500)
                let page = try await store.recent(limit: query.limit, before: query.before)
                return try JSONResponse.encoded(ImportList(imports: page.jobs.map(ImportView.init), next: page.next?.text))
            }
        }
        group.get("/imports/:id", .importsRead) { _, context in
            try await storage {
                guard let job = try await store.job(id: try context.parameters.require("id")) else { throw APIError.notFound("import") }
                return try JSONResponse.encoded(ImportView(job))
            }
        }
    }

    static func format(_ contentType: String?) -> CustomerImportParser.Format? {
        let type = (contentType ?? "").split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        switch type {
        case "text/csv": return .csv
        case "application/x-ndjson", "application/jsonl", "application/x-jsonlines": return .jsonl
        default: return nil
        }
    }

    func upload(_ request: Request) async throws -> Response {
        guard let format = Self.format(request.headers[.contentType]) else {
            throw APIError(.unsupportedMediaType, "unsupported_media_type", "send text/csv (with a header row) or application/x-ndjson")
        }
        let query = request.uri.queryParameters
        let dryRun = query.get("dryRun") == "true"
        let source = query.get("source").map { String($0) } ?? "import"
        guard (1...64).contains(source.utf8.count), source.utf8.allSatisfy({ IdentityInput.isTokenByte($0) || $0 == 0x2E }) else {
            throw APIError.badRequest("source must be 1 to 64 letters, digits, -, _ or .", code: "invalid_source")
        }
        var parser = CustomerImportParser(format: format, attributes: attributes, accounts: accounts)
        var upload = Upload(store: dryRun ? nil : store, format: format, source: source, clock: clock)
        do {
            var bytes = 0
            for try await buffer in request.body {
                bytes += buffer.readableBytes
                guard bytes <= maxBytes else {
                    throw APIError(.contentTooLarge, "body_too_large", "the import exceeds customers.importMaxBytes (\(maxBytes) bytes)")
                }
                upload.received.bytes += buffer.readableBytes
                try await upload.take(try parser.feed(buffer.readableBytesView))
            }
            try await upload.take(try parser.finish(), final: true)
        } catch let e as CustomerImportParser.HeaderError {
            try await upload.abandon(reason: e.reason)
            throw APIError.badRequest(e.reason, code: "invalid_import")
        } catch let e as APIError {
            try await upload.abandon(reason: e.message)
            throw e
        } catch {
            try? await upload.abandon(reason: "the upload was cut off")
            throw error
        }
        if dryRun { return try JSONResponse.encoded(upload.dryRunReport) }
        guard let id = upload.id, let job = try await store.job(id: id) else { throw APIError.unavailable }
        AuditNote.target(id)
        var response = try JSONResponse.encoded(ImportView(job), status: .accepted)
        response.headers[.location] = "/api/v1/imports/\(id)"
        return response
    }

    /// What one upload has read and not yet spooled, and its job.
    struct Upload {
        let store: CustomerImportStore?
        let format: CustomerImportParser.Format
        let source: String
        let clock: @Sendable () -> Int64
        var id: String?
        var received = CustomerImportStore.Received()
        var chunk = 0
        var kept = 0
        var totals = DryRunReport()

        mutating func take(_ outcomes: [CustomerImportParser.Outcome], final: Bool = false) async throws {
            for o in outcomes {
                received.rowsRead += 1
                switch o {
                case .success(let row): received.rows.append(row)
                case .failure(let rejected): received.rejected.append(rejected)
                }
            }
            // Rejections are flushed too, so a file of bad rows holds no more than a chunk's worth in memory.
            if received.rows.count >= ImportRoutes.chunkRows || received.rejected.count >= ImportRoutes.chunkRows || final {
                try await flush(final: final)
            }
        }

        /// Spools what was read (a dry run only counts it); the last flush marks the upload whole.
        mutating func flush(final: Bool) async throws {
            totals.add(received)
            defer { received = CustomerImportStore.Received() }
            guard let store else { return }
            let now = clock()
            let job: String
            if let id { job = id } else {
                job = ULID.make(milliseconds: now)
                try await store.create(id: job, format: format.rawValue, source: source, nowMs: now)
                id = job
            }
            chunk = try await store.spool(id: job, received, chunk: chunk, keptRejections: kept, nowMs: now)
            kept = min(CustomerImportStore.keptRejections, kept + received.rejected.count)
            if final { try await store.received(id: job, nowMs: now) }
        }

        mutating func abandon(reason: String) async throws {
            if let id, let store { try await store.fail(id: id, reason: reason, nowMs: clock()) }
        }

        var dryRunReport: DryRunReport { totals }
    }

    struct DryRunReport: Encodable {
        var dryRun = true
        var rowsRead = 0
        var valid = 0
        var rejected = 0
        var bytes = 0
        var rejections: [ImportView.Rejection] = []

        mutating func add(_ r: CustomerImportStore.Received) {
            rowsRead += r.rowsRead
            valid += r.rows.count
            rejected += r.rejected.count
            bytes += r.bytes
            rejections += r.rejected.prefix(max(0, CustomerImportStore.keptRejections - rejections.count)).map { .init(line: $0.line, reason: $0.reason) }
        }
    }
}

struct ImportList: Encodable {
    let imports: [ImportView]
    /// The cursor of the next (older) page, when there is one.
    let next: String?
}

/// An import job as the API shows it.
struct ImportView: Encodable {
    struct Rejection: Encodable {
        let line: Int
        let reason: String
    }

    let id: String
    let state: String
    let format: String
    let source: String
    let bytes: Int
    let rowsRead: Int
    let valid: Int
    let created: Int
    let updated: Int
    let merged: Int
    let rejected: Int
    /// Rows stored so far out of those accepted, 0...100.
    let percentApplied: Double
    let createdAt: String
    let receivedAt: String?
    let completedAt: String?
    let error: String?
    /// The first rejected lines (up to 1,000), with why.
    let rejections: [Rejection]

    init(_ j: CustomerImportStore.Job) {
        id = j.id
        state = j.state.rawValue
        format = j.format
        source = j.source
        bytes = j.bytes
        rowsRead = j.rowsRead
        valid = j.valid
        created = j.created
        updated = j.updated
        merged = j.merged
        rejected = j.rejected
        let stored = j.created + j.updated
        percentApplied = j.valid == 0 ? (j.state == .completed ? 100 : 0) : (Double(stored) * 1000 / Double(j.valid)).rounded() / 10
        createdAt = JSONResponse.isoTime(j.createdAt)
        receivedAt = j.receivedAt.map(JSONResponse.isoTime)
        completedAt = j.completedAt.map(JSONResponse.isoTime)
        error = j.error
        rejections = j.rejections.map { Rejection(line: $0.line, reason: $0.reason) }
    }
}
