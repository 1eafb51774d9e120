import Foundation
import XCTest

@testable import GatewayCore

final class SecretFilesTests: XCTestCase {
    func test_configValuesAndEnvironment_readSecretFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("scrm-secrets-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let admin = dir.appendingPathComponent("admin")
        try "admin-token-from-a-file-0123\n".write(to: admin, atomically: true, encoding: .utf8)
        let aes = dir.appendingPathComponent("aes")
        try "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2X".write(to: aes, atomically: true, encoding: .utf8)
        let yaml = """
            admin: { token: "${SCRM_ADMIN_TOKEN}" }
            accounts:
              - { id: a, platform: wechat, appId: wx0000000000000001, token: file:\(dir.path)/missing, mode: plain }
            """
        // Through the environment, and as a literal in the file; a missing file names the key.
        XCTAssertThrowsError(try ConfigLoader(environment: ["SCRM_ADMIN_TOKEN": "file:\(admin.path)"]).load(yaml: yaml)) { error in
            XCTAssertEqual((error as? ConfigError)?.path, "accounts[0].token")
        }
        try "account-token\n".write(to: dir.appendingPathComponent("missing"), atomically: true, encoding: .utf8)
        let config = try ConfigLoader(environment: ["SCRM_ADMIN_TOKEN": "file:\(admin.path)"]).load(yaml: yaml)
        XCTAssertEqual(config.admin.token, "admin-token-from-a-file-0123")
        XCTAssertEqual(config.account("a")?.token, "account-token")

        let env = try SecretFiles.resolve(["KEY": "file:\(aes.path)", "PLAIN": "value"])
        XCTAssertEqual(env, ["KEY": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2X", "PLAIN": "value"])
        try "\n".write(to: aes, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try SecretFiles.resolve(["KEY": "file:\(aes.path)"])) { error in
            XCTAssertEqual((error as? ConfigError)?.path, "$KEY")
        }
    }

    func test_publishedExampleSecrets_areFound() throws {
        let config = try ConfigLoader(environment: [:]).load(yaml: """
            accounts:
              - { id: mine, platform: wechat, appId: wx0000000000000001, token: a-token-of-our-own, encodingAESKey: Zz3YmXqr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C, mode: safe }
              - { id: demo, platform: wechat, appId: wx0000000000000002, token: scrmdemotoken, encodingAESKey: abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG, mode: compat }
              - { id: corp, platform: wecom, corpId: wx5823bf96d3bd56c7, token: QDG6eK, encodingAESKey: jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C, mode: safe }
            """)
        XCTAssertEqual(
            PublishedSecrets.uses(config),
            ["accounts[1].token (demo)", "accounts[1].encodingAESKey (demo)", "accounts[2].token (corp)", "accounts[2].encodingAESKey (corp)"])
        let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../config/gateway.yaml").path
        XCTAssertEqual(PublishedSecrets.uses(try ConfigLoader(environment: [:]).load(path: shipped)).count, 2, "the shipped demo account is a published one")
        let own = try ConfigLoader(environment: ["SCRM_DEMO_TOKEN": "our-own-token", "SCRM_DEMO_AES_KEY": "Zz3YmXqr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"]).load(path: shipped)
        XCTAssertEqual(PublishedSecrets.uses(own), [])
    }
}
