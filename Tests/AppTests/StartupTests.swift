import Foundation
import HTTPTransport
import TestSupport
import XCTest

/// The real binary's start-up checks: published example secrets are refused outside SCRM_ENV=dev,
/// and secrets may come from files.
final class StartupTests: XCTestCase {
    /// Runs scrm-gateway until it exits (or `seconds` pass: then it is stopped and nil answered).
    static func run(_ environment: [String: String], seconds: Double) throws -> (status: Int32, stderr: String)? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try GatewayProcess.binary())
        process.environment = environment
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            return nil
        }
        return (process.terminationStatus, String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }

    func test_publishedSecrets_refusedOutsideDev_andSecretsReadFromFiles() async throws {
        let redis = try RedisTestServer()
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("scrm-startup-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let port = try LocalProcess.freePort()
        let config = work.appendingPathComponent("gateway.yaml")
        try """
            server: { host: 127.0.0.1, port: \(port) }
            redis: { url: "\(redis.url)" }
            admin: { token: "${SCRM_ADMIN_TOKEN}" }
            privacy: { suppressionKey: "${SCRM_SUPPRESSION_KEY:-}" }
            outbound: { adaptersDir: \(GatewayProcess.root.appendingPathComponent("adapters").path), channels: {}, adapters: [] }
            accounts:
              - { id: demo, platform: wechat, appId: wx0000000000000001, token: "${SCRM_DEMO_TOKEN:-scrmdemotoken}", mode: plain }
            """.write(to: config, atomically: true, encoding: .utf8)
        let tokenFile = work.appendingPathComponent("admin-token")
        try "startup-admin-token-0123456789\n".write(to: tokenFile, atomically: true, encoding: .utf8)
        let base = ["SCRM_CONFIG": config.path, "SCRM_ADMIN_TOKEN": "file:\(tokenFile.path)", "SCRM_LOG_LEVEL": "error"]

        // The demo token outside dev: refused, naming where it is, before anything listens.
        let refused = try XCTUnwrap(try Self.run(base, seconds: 20), "the gateway started with a published token")
        XCTAssertEqual(refused.status, 78)
        XCTAssertTrue(refused.stderr.contains("accounts[0].token (demo)"), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("SCRM_ENV=dev"), refused.stderr)
        XCTAssertFalse(LocalProcess.canConnect(port: port))
        // In production, with its own token (from a file, as the admin token is): it serves.
        let accountToken = work.appendingPathComponent("account-token")
        try "our-own-account-token".write(to: accountToken, atomically: true, encoding: .utf8)
        var own = base
        own["SCRM_DEMO_TOKEN"] = "file:\(accountToken.path)"
        own["SCRM_ENV"] = "production"
        // Without the key opt-outs are hashed with: refused, naming it.
        let noKey = try XCTUnwrap(try Self.run(own, seconds: 20), "the gateway started without privacy.suppressionKey")
        XCTAssertEqual(noKey.status, 78)
        XCTAssertTrue(noKey.stderr.contains("privacy.suppressionKey"), noKey.stderr)
        own["SCRM_SUPPRESSION_KEY"] = "startup-suppression-key-0123"
        try await servesAndAcceptsTheFileToken(own, port: port)
        // The demo token in dev: it serves.
        var dev = base
        dev["SCRM_ENV"] = "dev"
        try await servesAndAcceptsTheFileToken(dev, port: port)
    }

    func test_refusedRedisCredentials_stopStartUp_withoutTheSecret() throws {
        let redis = try RedisTestServer(extraArguments: ["--requirepass", "the-right-password"])
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("scrm-startup-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let config = work.appendingPathComponent("gateway.yaml")
        try """
            server: { host: 127.0.0.1, port: \(try LocalProcess.freePort()) }
            redis: { url: "${SCRM_REDIS_URL}" }
            privacy: { suppressionKey: startup-suppression-key-0123 }
            outbound: { adaptersDir: \(GatewayProcess.root.appendingPathComponent("adapters").path), channels: {}, adapters: [] }
            accounts:
              - { id: mine, platform: wechat, appId: wx0000000000000001, token: our-own-account-token, mode: plain }
            """.write(to: config, atomically: true, encoding: .utf8)
        for url in ["redis://:a-wrong-password@127.0.0.1:\(redis.port)", "redis://127.0.0.1:\(redis.port)"] {
            let refused = try XCTUnwrap(try Self.run(["SCRM_CONFIG": config.path, "SCRM_REDIS_URL": url], seconds: 20), "started with \(url)")
            XCTAssertEqual(refused.status, 78)
            XCTAssertTrue(refused.stderr.contains("redis.url: Redis refused the credentials"), refused.stderr)
            XCTAssertFalse(refused.stderr.contains("a-wrong-password"), refused.stderr)
        }
    }

    func servesAndAcceptsTheFileToken(_ environment: [String: String], port: Int) async throws {
        let pid = try LocalProcess.spawn([try GatewayProcess.binary()], environment: environment)
        defer { LocalProcess.terminate(pid) }
        try LocalProcess.waitUntil(port: port, accepting: true, what: "scrm-gateway")
        let me = try await Self.get("http://127.0.0.1:\(port)/api/v1/me", token: "startup-admin-token-0123456789")
        XCTAssertEqual(me.status, 200)
        XCTAssertTrue(me.body.contains("\"actor\":\"bootstrap\""), me.body)
        let fileName = try await Self.get("http://127.0.0.1:\(port)/api/v1/me", token: "file:/etc/hostname")
        XCTAssertEqual(fileName.status, 401, "a token is never read from a path the caller names")
    }

    static func get(_ url: String, token: String) async throws -> (status: Int, body: String) {
        let http = HTTPTransport()
        let r = try await http.send(HTTPRequest(method: "GET", url: url, headers: [("Authorization", "Bearer \(token)")], body: [], timeoutMs: 10_000))
        return (r.status, String(decoding: r.body, as: UTF8.self))
    }
}
