import Foundation
import HTTPTransport
import XCTest

/// Helpers for tests that run the real `scrm-gateway` binary (crash tests).
enum GatewayProcess {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The debug binary `swift build --build-tests` (scripts/test) leaves; fails the test when missing.
    static func binary() throws -> String {
        let path = root.appendingPathComponent(".build/debug/scrm-gateway").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            XCTFail("\(path) is missing: run `swift build --build-tests` (scripts/test does) before this test")
            throw CancellationError()
        }
        return path
    }

    /// Copies the shipped adapter specs into `directory/adapters`, replacing text in some of them
    /// (file name -> (old, new)), e.g. a provider's rate raised so a test runs quickly.
    static func adapters(in directory: URL, edits: [String: (String, String)]) throws -> URL {
        let adapters = directory.appendingPathComponent("adapters")
        try FileManager.default.createDirectory(at: adapters, withIntermediateDirectories: true)
        for file in try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("adapters").path) where file.hasSuffix(".yaml") {
            var text = try String(contentsOf: root.appendingPathComponent("adapters/\(file)"), encoding: .utf8)
            if let (old, new) = edits[file] {
                XCTAssertTrue(text.contains(old), "\(file) no longer contains \(old)")
                text = text.replacingOccurrences(of: old, with: new)
            }
            try text.write(to: adapters.appendingPathComponent(file), atomically: true, encoding: .utf8)
        }
        return adapters
    }
}

extension GatewayProcess {
    /// Calls the admin API of a gateway process on `port`: the JSON answer, or [:] when there is none.
    static func admin(_ http: HTTPTransport, port: Int, token: String, _ method: String, _ path: String, _ body: String) async throws -> [String: Any] {
        let r = try await http.send(HTTPRequest(
            method: method, url: "http://127.0.0.1:\(port)\(path)", headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")],
            body: Array(body.utf8), timeoutMs: 30_000))
        return (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any] ?? [:]
    }

    /// Polls `condition` until it holds; after `seconds` the test fails and this throws.
    static func waitFor(_ what: String, seconds: Double, _ condition: () async -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while await !condition() {
            guard Date() < deadline else {
                XCTFail("timed out waiting for \(what)")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}

extension GatewayProcess {
    /// The key opt-outs are hashed with, which a gateway outside SCRM_ENV=dev must have.
    static let privacyYAML = "privacy: { suppressionKey: crash-test-suppression-key-0001 }"

    /// Writes `gateway-<index>.yaml` for a crash test (one WeChat account, `demo`, on the fake WeChat;
    /// the adapters given; senders that take over a silent process's work after 2 s) and returns the
    /// environment to start that gateway with. `redis`: how the config names its Redis
    /// (`CrashRedis.locator`). `outbound` and `extra`: more YAML for the outbound
    /// section and the top level.
    static func crashConfig(
        in work: URL, index: Int, port: Int, redis: String, adminToken: String, adapters: URL, appId: String, appSecret: String,
        fakes: [String: String], outbound: String = "", extra: String = ""
    ) throws -> [String: String] {
        let config = work.appendingPathComponent("gateway-\(index).yaml")
        try """
            server: { host: 127.0.0.1, port: \(port) }
            redis: { \(redis), connections: 4, commandTimeoutMs: 2000 }
            admin: { token: \(adminToken) }
            \(GatewayProcess.privacyYAML)
            outbound:
              adaptersDir: \(adapters.path)
              channels: { wechat: wechat-template, sms: sandbox-sms, email: sandbox-email }
              adapters: []
              concurrency: 16
              claimIdleSeconds: 2
            \(outbound)
            accounts:
              - { id: demo, platform: wechat, appId: \(appId), token: crashtoken, appSecret: \(appSecret), mode: plain }
            \(extra)
            """.write(to: config, atomically: true, encoding: .utf8)
        var env = fakes
        env["SCRM_CONFIG"] = config.path
        env["SCRM_LOG_LEVEL"] = "error"
        return env
    }
}

