import FakeProviders
import Foundation
import HTTPTransport
import TestSupport
import XCTest

final class HTTPTransportTests: XCTestCase {
    private func fake() async throws -> FakeServer { try await TransportRoutes.start() }

    func test_post_sendsMethodHeadersAndBodyAndReadsTheResponse() async throws {
        let server = try await fake()
        let transport = HTTPTransport()
        let body = #"{"touser":"oABC","text":"价格 ✓"}"#
        let r = try await transport.send(
            HTTPRequest(method: "POST", url: server.baseURL + "/echo?a=1", headers: [("Content-Type", "application/json"), ("X-Trace", "t-1")], body: Array(body.utf8)))
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.header("content-type"), "application/json", "header lookup ignores case")
        let echo = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any])
        XCTAssertEqual(echo["method"] as? String, "POST")
        XCTAssertEqual(echo["query"] as? String, "a=1")
        XCTAssertEqual(echo["body"] as? String, body, "UTF-8 body byte for byte")
        XCTAssertEqual((echo["headers"] as? [String: String])?["x-trace"], "t-1")
        XCTAssertNil((echo["headers"] as? [String: String])?["expect"], "no Expect: 100-continue round trip")
        for method in ["PUT", "PATCH", "DELETE", "GET"] {
            let m = try await transport.send(HTTPRequest(method: method, url: server.baseURL + "/echo"))
            XCTAssertEqual((try JSONSerialization.jsonObject(with: Data(m.body)) as? [String: Any])?["method"] as? String, method)
        }
        transport.shutdown()
        await server.stop()
    }

    func test_manyConcurrentTransfers_allCompleteOnTheOneDriver() async throws {
        let server = try await fake()
        let transport = HTTPTransport()
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<300 {
                group.addTask {
                    try await transport.send(HTTPRequest(method: "POST", url: server.baseURL + "/echo", body: Array("n=\(i)".utf8))).status
                }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        XCTAssertEqual(statuses.count, 300)
        XCTAssertTrue(statuses.allSatisfy { $0 == 200 })
        XCTAssertEqual(transport.inFlight, 0)
        transport.shutdown()
        await server.stop()
    }

    func test_providerStatusesAndRetryAfterReachTheCaller() async throws {
        let server = try await fake()
        let transport = HTTPTransport()
        let throttled = try await transport.send(HTTPRequest(url: server.baseURL + "/status/429"))
        XCTAssertEqual(throttled.status, 429)
        XCTAssertEqual(throttled.header("Retry-After"), "2")
        let failed = try await transport.send(HTTPRequest(url: server.baseURL + "/status/502"))
        XCTAssertEqual(failed.status, 502, "an HTTP error status is a response, not a transport error")
        transport.shutdown()
        await server.stop()
    }

    func test_timeout_failsTheTransferAsTimeout() async throws {
        let server = try await fake()
        let transport = HTTPTransport()
        let started = Date()
        do {
            _ = try await transport.send(HTTPRequest(url: server.baseURL + "/slow/3000", timeoutMs: 200))
            XCTFail("expected a timeout")
        } catch let error as TransportError {
            XCTAssertEqual(error.kind, .timeout)
            XCTAssertTrue(error.requestSent, "the server had the request: the outcome is unknown")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 2.0)
        transport.shutdown()
        await server.stop()
    }

    func test_cancellingTheTask_abortsItsTransfer() async throws {
        let server = try await fake()
        let transport = HTTPTransport()
        let task = Task { try await transport.send(HTTPRequest(url: server.baseURL + "/slow/5000", timeoutMs: 10_000)) }
        try await Task.sleep(for: .milliseconds(150))
        task.cancel()
        do {
            _ = try await task.value
            XCTFail("expected cancellation")
        } catch let error as TransportError {
            XCTAssertEqual(error.kind, .cancelled)
            XCTAssertTrue(error.requestSent)
        }
        XCTAssertEqual(transport.inFlight, 0)
        transport.shutdown()
        await server.stop()
    }

    func test_oversizedResponse_failsAsTooLarge() async throws {
        let server = try await fake()
        var configuration = TransportConfiguration()
        configuration.maxResponseBytes = 10_000
        let transport = HTTPTransport(configuration)
        let small = try await transport.send(HTTPRequest(url: server.baseURL + "/bytes/9000"))
        XCTAssertEqual(small.body.count, 9000)
        do {
            _ = try await transport.send(HTTPRequest(url: server.baseURL + "/bytes/200000"))
            XCTFail("expected tooLarge")
        } catch let error as TransportError {
            XCTAssertEqual(error.kind, .tooLarge)
        }
        transport.shutdown()
        await server.stop()
    }

    func test_refusedConnection_isANetworkError_andShutdownRefusesNewWork() async throws {
        let transport = HTTPTransport()
        let port = try LocalProcess.freePort()
        do {
            _ = try await transport.send(HTTPRequest(url: "http://127.0.0.1:\(port)/", timeoutMs: 2000))
            XCTFail("expected a connection failure")
        } catch let error as TransportError {
            XCTAssertEqual(error.kind, .network)
            XCTAssertFalse(error.requestSent, "nothing reached a server: safe to try again")
        }
        transport.shutdown()
        do {
            _ = try await transport.send(HTTPRequest(url: "http://127.0.0.1:\(port)/"))
            XCTFail("expected shutdown")
        } catch let error as TransportError {
            XCTAssertEqual(error.kind, .shutdown)
        }
    }
}
