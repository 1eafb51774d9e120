import ArgumentParser
import Foundation
import GatewayCore
import RedisClient
import Store

/// Seeds sent campaign messages with one tracked link each (and their customers) for
/// `scripts/bench links`, and writes their link tokens, one per line, for wrk.
struct LinksSeed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "links-seed", abstract: "Seeds tracked links and writes their tokens for wrk.")

    @Option var redis: String
    @Option(help: "outbound.linkSecret of the gateway under test.") var secret: String
    @Option var publicURL = "http://127.0.0.1:8080"
    @Option var messages = 200_000
    @Option var customers = 20_000
    @Option var out: String

    func run() async throws {
        let pool = RedisPool(try RedisConfiguration(url: redis, connections: 4))
        defer { pool.shutdown() }
        guard let tokens = LinkTokens(secret: secret, publicURL: publicURL) else { throw ValidationError("the secret needs 16 characters") }
        let store = CustomerStore(redis: pool, config: GatewayConfig())
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var ids = [String]()
        for start in stride(from: 0, to: customers, by: 1000) {
            let rows = (start..<min(start + 1000, customers)).map { i in
                CustomerStore.ImportRow(identities: [Identity(kind: .email, value: "clicker\(i)@example.com")])
            }
            try await store.importBatch(rows, nowMs: now)
        }
        ids = try await pool.send("ZRANGE", Keys.customers, "0", "-1").strings
        let campaign = ULID.make(milliseconds: now)
        var lines = [String]()
        lines.reserveCapacity(messages)
        for start in stride(from: 0, to: messages, by: 2000) {
            var commands = [[String]]()
            for i in start..<min(start + 2000, messages) {
                let id = ULID.make(milliseconds: now)
                commands.append([
                    "HSET", Keys.message(id), "id", id, "channel", "email", "state", "sent", "sentAt", String(now), "customerId", ids[i % ids.count],
                    "campaign", campaign, "variant", i % 2 == 0 ? "A" : "B", "links", #"["https://example.com/expo?utm_source=bench"]"#,
                ])
                lines.append(tokens.token(messageId: id, index: 0)!)
            }
            _ = try await pool.pipelineChecked(commands)
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: out, atomically: true, encoding: .utf8)
        print("RESULT messages=\(messages) customers=\(ids.count) campaign=\(campaign)")
    }
}
