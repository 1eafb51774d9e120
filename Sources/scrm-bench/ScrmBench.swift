import ArgumentParser
import Foundation
import GatewayCore
import GatewayCrypto
import HTTPTransport

/// Load-test helpers for scripts/bench.
@main
struct ScrmBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scrm-bench",
        abstract: "Load tools for scripts/bench.",
        subcommands: [Requests.self, OutboundSends.self, Throttle.self, CampaignBench.self, ConsoleBench.self, CRMBench.self, LinksSeed.self, JourneysBench.self, DrillIngress.self, DrillOutage.self, DrillTwoInstances.self, DrillCluster.self, RedisLoad.self]
    )
}

struct Requests: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Writes distinct, validly signed webhook requests for wrk (one per line: path TAB body).")

    enum Scenario: String, ExpressibleByArgument { case plainText = "plain-text", safeText = "safe-text", subscribe }

    @Argument var scenario: Scenario
    @Option var count = 100_000
    @Option var config = "config/gateway.yaml"
    @Option var account = "demo"
    @Option var out: String
    @Option(help: "Distinct followers for the text scenarios.") var followers = 10_000

    func run() throws {
        let cfg = try ConfigLoader().load(path: config)
        guard let acct = cfg.account(account) else { throw ValidationError("no account \(account)") }
        let builder = CallbackBuilder(account: acct)
        let now = Int64(Date().timeIntervalSince1970)
        let run = SecureRandom.alphanumeric(6)
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: out) else { throw ValidationError("cannot write \(out)") }
        defer { try? handle.close() }
        var chunk = ""
        for i in 0..<count {
            let xml: String
            switch scenario {
            case .plainText, .safeText:
                // "hello" hits the demo auto-reply, so the safe scenario includes an encrypted reply.
                xml = SampleCallbacks.text(
                    to: "gh_bench", from: "oBENCH\(i % followers)", content: "hello bench \(i)", msgId: "\(run.hashValue & 0xffffff)\(i)",
                    createTime: now)
            case .subscribe:
                xml = SampleCallbacks.event(to: "gh_bench", from: "oSUB\(run)\(i)", event: "subscribe", eventKey: "qrscene_expo2026", createTime: now)
            }
            let r = try builder.post(xml: xml, timestamp: now, nonce: "\(run)\(i)", encrypt: scenario == .safeText)
            chunk += r.pathAndQuery + "\t" + r.body + "\n"
            if chunk.utf8.count > 1 << 20 {
                handle.write(Data(chunk.utf8))
                chunk = ""
            }
        }
        handle.write(Data(chunk.utf8))
    }
}
