import CCurl
import Foundation
import NIOConcurrencyHelpers

/// Settings of the transport, shared by every transfer.
public struct TransportConfiguration: Sendable {
    /// Connections kept open per host (and transfers to one host at a time over HTTP/1.1).
    public var maxConnectionsPerHost = 64
    public var maxConnections = 512
    public var connectTimeoutMs = 5_000
    /// Responses over this size fail with `.tooLarge` instead of filling memory.
    public var maxResponseBytes = 8 * 1024 * 1024
    public var userAgent = "scrm-gateway"

    public init() {}
}

/// HTTP and SMTP over libcurl with one curl-multi driver thread for every transfer: connections are
/// reused across requests, HTTP/2 is used where a TLS server offers it, and proxies come from the usual
/// environment variables (`http_proxy`, `https_proxy`, `no_proxy`; libcurl's rules). Callers `await`;
/// no event loop or Swift concurrency thread ever blocks on the network.
public final class HTTPTransport: Sendable {
    /// The process-wide transport.
    public static let shared = HTTPTransport()

    private let driver: CurlDriver

    public init(_ configuration: TransportConfiguration = TransportConfiguration()) {
        driver = CurlDriver(configuration)
    }

    /// Stops the driver: transfers still running fail with `.shutdown`.
    public func shutdown() { driver.shutdown() }

    /// Transfers currently in flight (a gauge for status pages).
    public var inFlight: Int { driver.inFlight }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let outcome = try await driver.run(.http(request))
        return HTTPResponse(status: outcome.status, headers: outcome.headers, body: outcome.body)
    }

    /// Sends one message over SMTP (AUTH when the envelope has credentials, STARTTLS per `security`).
    public func send(mail: MailEnvelope) async throws -> MailReceipt {
        let outcome = try await driver.run(.mail(mail))
        return MailReceipt(replyCode: outcome.status)
    }
}

enum CurlJob: Sendable {
    case http(HTTPRequest)
    case mail(MailEnvelope)
}

/// Owns the `CURLM*` and the thread that drives it. Other threads only enqueue jobs and cancellations
/// under the mutex and wake the thread with `curl_multi_wakeup`.
final class CurlDriver: Sendable {
    fileprivate struct Pending: @unchecked Sendable {
        var id: UInt64
        var job: CurlJob
        var complete: (Result<CurlOutcome, TransportError>) -> Void
    }

    private struct Inbox {
        var nextId: UInt64 = 1
        var jobs: [Pending] = []
        var cancelled: [UInt64] = []
        var stopping = false
        var inFlight = 0
    }

    private static let globalInit: Bool = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK }()

    nonisolated(unsafe) private let multi: UnsafeMutableRawPointer  // CURLM*, touched by the driver thread (and wakeup)
    private let configuration: TransportConfiguration
    private let inbox = NIOLockedValueBox(Inbox())
    private let stopped = DispatchSemaphore(value: 0)

    init(_ configuration: TransportConfiguration) {
        precondition(Self.globalInit, "curl_global_init failed")
        self.configuration = configuration
        multi = curl_multi_init()!
        _ = scrm_curl_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, configuration.maxConnectionsPerHost)
        _ = scrm_curl_multi_setopt_long(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, configuration.maxConnections)
        _ = scrm_curl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, configuration.maxConnections)
        _ = scrm_curl_multi_setopt_long(multi, CURLMOPT_PIPELINING, Int(CURLPIPE_MULTIPLEX))
        let thread = Thread { [self] in
            CurlLoop(multi: multi, configuration: configuration, driver: self).run()
            stopped.signal()
        }
        thread.name = "curl-driver"
        thread.start()
    }

    var inFlight: Int { inbox.withLockedValue { $0.inFlight } }

    func run(_ job: CurlJob) async throws -> CurlOutcome {
        let id = inbox.withLockedValue { inbox -> UInt64 in
            defer { inbox.nextId += 1 }
            return inbox.nextId
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<CurlOutcome, any Error>) in
                let accepted = inbox.withLockedValue { inbox -> Bool in
                    guard !inbox.stopping else { return false }
                    inbox.jobs.append(Pending(id: id, job: job, complete: { continuation.resume(with: $0.mapError { $0 }) }))
                    inbox.inFlight += 1
                    return true
                }
                if accepted {
                    curl_multi_wakeup(multi)
                } else {
                    continuation.resume(throwing: TransportError(kind: .shutdown, curlCode: 0, protocolCode: 0, message: "transport is shut down"))
                }
            }
        } onCancel: {
            inbox.withLockedValue { $0.cancelled.append(id) }
            curl_multi_wakeup(multi)
        }
    }

    func shutdown() {
        let first = inbox.withLockedValue { inbox -> Bool in
            defer { inbox.stopping = true }
            return !inbox.stopping
        }
        guard first else { return }
        curl_multi_wakeup(multi)
        stopped.wait()
    }

    /// Called by the loop: new jobs, cancellations, and whether to stop.
    fileprivate func takeInbox() -> (jobs: [Pending], cancelled: [UInt64], stopping: Bool) {
        inbox.withLockedValue { inbox in
            defer {
                inbox.jobs.removeAll(keepingCapacity: true)
                inbox.cancelled.removeAll()
            }
            return (inbox.jobs, inbox.cancelled, inbox.stopping)
        }
    }

    fileprivate func finished(count: Int) { inbox.withLockedValue { $0.inFlight -= count } }

    fileprivate typealias Job = Pending
}

/// The driver thread's state: running transfers by id and idle easy handles for reuse.
private final class CurlLoop {
    let multi: UnsafeMutableRawPointer
    let configuration: TransportConfiguration
    let driver: CurlDriver
    var running: [UInt64: CurlEasy] = [:]
    var idle: [CurlEasy] = []

    init(multi: UnsafeMutableRawPointer, configuration: TransportConfiguration, driver: CurlDriver) {
        self.multi = multi
        self.configuration = configuration
        self.driver = driver
    }

    func run() {
        while true {
            let (jobs, cancelled, stopping) = driver.takeInbox()
            for job in jobs { start(job) }
            for id in cancelled {
                let sent = running[id]?.requestSent ?? false
                finish(id, .failure(TransportError(kind: .cancelled, curlCode: 0, protocolCode: 0, message: "cancelled", requestSent: sent)))
            }
            if stopping {
                for id in Array(running.keys) {
                    let sent = running[id]?.requestSent ?? false
                    finish(id, .failure(TransportError(kind: .shutdown, curlCode: 0, protocolCode: 0, message: "transport shut down", requestSent: sent)))
                }
                idle.removeAll()
                curl_multi_cleanup(multi)
                return
            }
            var stillRunning: Int32 = 0
            curl_multi_perform(multi, &stillRunning)
            var queued: Int32 = 0
            while let message = curl_multi_info_read(multi, &queued) {
                guard scrm_curl_msg_is_done(message) != 0, let handle = scrm_curl_msg_handle(message) else { continue }
                var raw: UnsafeMutableRawPointer?
                _ = scrm_curl_getinfo_pointer(handle, CURLINFO_PRIVATE, &raw)
                guard let raw else { continue }
                let easy = Unmanaged<CurlEasy>.fromOpaque(raw).takeUnretainedValue()
                finish(easy.jobId, easy.outcome(scrm_curl_msg_result(message)))
            }
            curl_multi_poll(multi, nil, 0, 1000, nil)
        }
    }

    private func start(_ job: CurlDriver.Job) {
        guard let easy = idle.popLast() ?? CurlEasy() else {
            driver.finished(count: 1)
            job.complete(.failure(TransportError(kind: .network, curlCode: -1, protocolCode: 0, message: "curl_easy_init failed")))
            return
        }
        easy.jobId = job.id
        easy.complete = job.complete
        switch job.job {
        case .http(let request):
            easy.configure(http: request, connectTimeoutMs: configuration.connectTimeoutMs, maxResponseBytes: configuration.maxResponseBytes, userAgent: configuration.userAgent)
        case .mail(let mail):
            easy.configure(mail: mail, connectTimeoutMs: configuration.connectTimeoutMs, userAgent: configuration.userAgent)
        }
        running[job.id] = easy
        curl_multi_add_handle(multi, easy.handle)
    }

    /// Ends transfer `id` (if it is still running) with `result` and keeps its handle for reuse.
    private func finish(_ id: UInt64, _ result: Result<CurlOutcome, TransportError>) {
        guard let easy = running.removeValue(forKey: id) else { return }
        curl_multi_remove_handle(multi, easy.handle)
        let complete = easy.complete
        easy.reset()
        if idle.count < 256 { idle.append(easy) }
        driver.finished(count: 1)
        complete?(result)
    }
}
