import ArgumentParser
import Foundation
import HTTPTransport

/// Unthrottled sends through the curl-multi driver: `concurrency` callers in a closed loop POST a
/// template-message-sized JSON body to `url` until `seconds` pass.
struct OutboundSends: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "outbound", abstract: "Sends/s through HTTPTransport to a loopback fake provider.")

    @Option var url: String
    @Option var seconds = 5.0
    @Option var concurrency = 64

    func run() async throws {
        let transport = HTTPTransport()
        let body = Array(
            #"{"touser":"oABCDEFGHIJKLMNOPQRSTUVWXYZ12","template_id":"ngqIpbwh8bUfcSsECmogfXcV14J0tQlEpBO27izEYtY","data":{"first":{"value":"您好"},"keyword1":{"value":"ORDER-1"}}}"#.utf8)
        let request = HTTPRequest(method: "POST", url: url, headers: [("Content-Type", "application/json")], body: body)
        let start = ContinuousClock.now
        let deadline = start + .seconds(seconds)
        let results = try await withThrowingTaskGroup(of: (ok: Int, failed: Int, latenciesUs: [Int]).self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var ok = 0, failed = 0
                    var latencies: [Int] = []
                    while ContinuousClock.now < deadline {
                        let t0 = ContinuousClock.now
                        do {
                            let r = try await transport.send(request)
                            if r.status == 200 { ok += 1 } else { failed += 1 }
                        } catch { failed += 1 }
                        let d = ContinuousClock.now - t0
                        latencies.append(Int(d.components.seconds * 1_000_000 + d.components.attoseconds / 1_000_000_000_000))
                    }
                    return (ok, failed, latencies)
                }
            }
            return try await group.reduce(into: (ok: 0, failed: 0, latenciesUs: [Int]())) {
                $0.ok += $1.ok
                $0.failed += $1.failed
                $0.latenciesUs += $1.latenciesUs
            }
        }
        let elapsed = ContinuousClock.now - start
        let secs = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let sorted = results.latenciesUs.sorted()
        func pct(_ p: Double) -> Double { percentileMs(sorted, p) }
        print(String(format: "RESULT sends=%d failed=%d seconds=%.3f p50_ms=%.2f p99_ms=%.2f", results.ok, results.failed, secs, pct(0.5), pct(0.99)))
        transport.shutdown()
    }
}
