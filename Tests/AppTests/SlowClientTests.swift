import App
import Foundation
import GatewayCore
import HummingbirdTesting
import XCTest

/// The request deadline on a real socket: a client that never finishes its headers, or trickles its
/// body, is disconnected after `server.requestTimeoutSeconds`; a normal request on the same server
/// is answered.
final class SlowClientTests: XCTestCase {
    static func connect(_ port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Foundation.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { throw CocoaError(.fileReadUnknown) }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// Seconds until the server closes the connection (recv returns 0), nil if it is still open after `limit`.
    static func secondsUntilClosed(_ fd: Int32, trickle: [UInt8]?, limit: Double) -> Double? {
        let start = Date()
        var buf = [UInt8](repeating: 0, count: 512)
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        while Date().timeIntervalSince(start) < limit {
            if let trickle { _ = send(fd, trickle, trickle.count, Int32(MSG_NOSIGNAL)) }
            let n = recv(fd, &buf, buf.count, 0)
            if n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { return Date().timeIntervalSince(start) }
        }
        return nil
    }

    /// A live server whose request deadline is 1 s.
    static func oneSecondDeadline() throws -> Harness {
        try Harness {
            $0.server.requestTimeoutSeconds = 1
            $0.server.host = "127.0.0.1"
            $0.server.port = 0
        }
    }

    func test_slowHeadersAndTrickledBodies_areCutOff_goodRequestsAnswered() async throws {
        let h = try Self.oneSecondDeadline()
        try await h.testLive { client in
            let port = try XCTUnwrap(client.port)
            let loris = try Self.connect(port)
            defer { close(loris) }
            // A header value that grows a byte at a time and never ends.
            let start = Array("POST /webhooks/wechat/demo HTTP/1.1\r\nHost: x\r\nX-Loris: ".utf8)
            _ = send(loris, start, start.count, Int32(MSG_NOSIGNAL))
            let cut = Self.secondsUntilClosed(loris, trickle: Array("a".utf8), limit: 4)
            XCTAssertNotNil(cut, "headers that never end are cut off")
            XCTAssertGreaterThan(cut ?? 0, 0.6, "by the deadline, not as a malformed request")
            XCTAssertLessThan(cut ?? 99, 2.5)

            let body = try Self.connect(port)
            defer { close(body) }
            // Correctly signed, so the gateway waits for the body instead of refusing at once.
            let signed = try h.builder("plain").post(xml: "<xml/>", timestamp: h.nowSeconds, nonce: freshNonce(), encrypt: false)
            let head = "POST \(signed.pathAndQuery) HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n"
            _ = send(body, Array(head.utf8), head.utf8.count, Int32(MSG_NOSIGNAL))
            let cutBody = Self.secondsUntilClosed(body, trickle: Array("a".utf8), limit: 4)
            XCTAssertNotNil(cutBody, "a trickled body is cut off")
            XCTAssertGreaterThan(cutBody ?? 0, 0.6, "by the deadline, not by an early answer")

            let good = try Self.connect(port)
            defer { close(good) }
            let req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            _ = send(good, Array(req.utf8), req.utf8.count, Int32(MSG_NOSIGNAL))
            var buf = [UInt8](repeating: 0, count: 512)
            let n = recv(good, &buf, buf.count, 0)
            XCTAssertTrue(n > 0 && String(decoding: buf[0..<max(n, 0)], as: UTF8.self).hasPrefix("HTTP/1.1 200"), "a normal request is answered")
        }
    }

    func test_anImportUploadLongerThanTheDeadline_goesThroughWhileItKeepsComing_andIsCutWhenItStalls() async throws {
        let h = try Self.oneSecondDeadline()
        try await h.testLive { client in
            let port = try XCTUnwrap(client.port)
            // 2.5 s of upload, 80 KiB every 0.5 s: each piece restarts the 1 s clock.
            let rows = (0..<28_000).map { String(format: "+86139%08d\n", $0) }.joined()
            let piece = 80 * 1024
            let body = Array(("phone\n" + rows).utf8)
            let fd = try Self.connect(port)
            defer { close(fd) }
            let head = "POST /api/v1/customers/import HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(Harness.adminToken)\r\n"
                + "Content-Type: text/csv\r\nContent-Length: \(body.count)\r\n\r\n"
            _ = send(fd, Array(head.utf8), head.utf8.count, Int32(MSG_NOSIGNAL))
            var offset = 0
            let started = Date()
            while offset < body.count {
                let end = min(body.count, offset + piece)
                let n = body[offset..<end].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                XCTAssertEqual(n, end - offset, "the connection stayed open")
                offset = end
                if offset < body.count { try await Task.sleep(for: .milliseconds(500)) }
            }
            XCTAssertGreaterThan(Date().timeIntervalSince(started), 1.2, "longer than the deadline")
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = recv(fd, &buf, buf.count, 0)
            XCTAssertTrue(String(decoding: buf[0..<max(n, 0)], as: UTF8.self).hasPrefix("HTTP/1.1 202"), "the import was accepted")

            // The same upload stalling after its first piece is cut off by the deadline.
            let stalled = try Self.connect(port)
            defer { close(stalled) }
            _ = send(stalled, Array(head.utf8), head.utf8.count, Int32(MSG_NOSIGNAL))
            _ = body[0..<piece].withUnsafeBytes { send(stalled, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            let cut = Self.secondsUntilClosed(stalled, trickle: Array("1".utf8), limit: 4)
            XCTAssertNotNil(cut, "a trickle after the first piece does not keep the upload alive")
        }
    }
}
