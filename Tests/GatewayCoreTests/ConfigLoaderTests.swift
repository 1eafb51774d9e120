import XCTest

@testable import GatewayCore

final class ConfigLoaderTests: XCTestCase {
    func test_shippedConfig_loadsWithDemoDefaultsAndEnvironmentOverrides() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../config/gateway.yaml").path
        let config = try ConfigLoader(environment: [:]).load(path: path)
        let demo = try XCTUnwrap(config.account("demo"))
        XCTAssertEqual(demo.mode, .compat)
        let hello = InboundMessage(fields: ["MsgType": "text", "Content": "Hello there"])
        guard case .text(let text)? = CompiledReplies(ReplyRules(account: demo)).reply(to: hello) else { return XCTFail("the config's hello rule") }
        XCTAssertFalse(text.isEmpty)
        XCTAssertNil(config.admin.token, "no token configured = admin API closed")
        let custom = try ConfigLoader(environment: ["SCRM_DEMO_TOKEN": "fromenv", "SCRM_PORT": "9090", "SCRM_ADMIN_TOKEN": "0123456789abcdef0"]).load(path: path)
        XCTAssertEqual(custom.account("demo")?.token, "fromenv")
        XCTAssertEqual(custom.server.port, 9090)
        XCTAssertEqual(custom.admin.token, "0123456789abcdef0")
        XCTAssertEqual(
            config.outbound.channels, ["wechat": "sandbox-wechat-template", "sms": "sandbox-sms", "email": "sandbox-email", "douyin": "sandbox-douyin-im"],
            "the demo sends nothing off the machine")
        XCTAssertEqual(config.outbound.enabledAdapters, ["sandbox-wechat-template", "sandbox-wechat-custom", "sandbox-sms", "sandbox-email", "sandbox-douyin-im"])
        let real = try ConfigLoader(environment: ["SCRM_SMS_ADAPTER": "twilio-sms", "SCRM_PUBLIC_URL": "https://gw.example.com/"]).load(path: path)
        XCTAssertEqual(real.outbound.channels["sms"], "twilio-sms")
        XCTAssertEqual(real.outbound.publicURL, "https://gw.example.com", "a trailing slash is dropped")
        XCTAssertEqual(config.customers.attributes, CustomerAttributes(CustomerAttributes.defaults), "gateway.yaml ships the default attributes")
        XCTAssertEqual(config.contactRules.requireOptIn, ["sms"], "SMS marketing needs an opt-in by default")
        XCTAssertEqual(try ConfigLoader(environment: ["SCRM_SMS_REQUIRE_OPT_IN": "false"]).load(path: path).contactRules.requireOptIn, [])
        XCTAssertEqual(config.redis.cluster, [], "a single Redis by default")
        let cluster = try ConfigLoader(environment: ["SCRM_REDIS_CLUSTER": "redis://10.0.0.1:7000, redis://u:p@10.0.0.2:7000"]).load(path: path)
        XCTAssertEqual(cluster.redis.cluster, ["redis://10.0.0.1:7000", "redis://u:p@10.0.0.2:7000"])
        XCTAssertEqual(try ConfigLoader(environment: [:]).load(yaml: "redis: { cluster: [ 'redis://a:1', 'redis://b:2' ], readFromReplicas: true }").redis.cluster.count, 2)
    }

    func test_interpolation_requiredDefaultAndMissing() throws {
        XCTAssertEqual(try Interpolation.expand("a${X}b", env: ["X": "1"], path: "p"), "a1b")
        XCTAssertEqual(try Interpolation.expand("${X:-def}", env: [:], path: "p"), "def")
        XCTAssertEqual(try Interpolation.expand("${X:-def}", env: ["X": ""], path: "p"), "def")
        XCTAssertThrowsError(try Interpolation.expand("${MISSING}", env: [:], path: "redis.url")) {
            XCTAssertEqual(($0 as? ConfigError)?.path, "redis.url")
        }
    }

    func test_badConfig_failsWithKeyPathAndReason() {
        let cases: [(String, String)] = [
            ("server: { port: 99999 }", "server.port"),
            ("server: { prot: 1 }", "server.prot"),
            ("accounts: [ { id: a, platform: wechat, appId: x, token: tok, mode: safe } ]", "accounts[0].encodingAESKey"),
            ("accounts: [ { id: a, platform: wecom, corpId: x, token: tok, encodingAESKey: abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG, mode: plain } ]", "accounts[0].mode"),
            ("accounts: [ { id: a, appId: x, token: tok }, { id: a, appId: y, token: tok } ]", "accounts[1].id"),
            ("accounts: [ { id: 'bad id', appId: x, token: tok } ]", "accounts[0].id"),
            ("accounts: [ { id: a, appId: x, token: tok, scenes: { s: 'has space' } } ]", "accounts[0].scenes.s"),
            ("admin: { token: short }", "admin.token"),
            ("webhooks: { timestampWindowSeconds: 600, nonceTTLSeconds: 60 }", "webhooks.nonceTTLSeconds"),
            ("accounts: [ { id: a, appId: '${NOPE}', token: tok } ]", "accounts[0].appId"),
            ("outbound: { channels: { fax: x } }", "outbound.channels.fax"),
            ("outbound: { publicURL: 'gw.example.com' }", "outbound.publicURL"),
            ("outbound: { adapters: sandbox-sms }", "outbound.adapters"),
            ("outbound: { circuitFailures: 0 }", "outbound.circuitFailures"),
            ("outbound: { circuitOpenMs: 5000, circuitMaxOpenMs: 1000 }", "outbound.circuitMaxOpenMs"),
            ("redis: { cluster: [ 'redis://a:1/2' ] }", "redis.cluster"),
            ("redis: { cluster: 'unix:///tmp/r.sock' }", "redis.cluster"),
            ("redis: { readFromReplicas: maybe }", "redis.readFromReplicas"),
        ]
        for (yaml, path) in cases {
            XCTAssertThrowsError(try ConfigLoader(environment: [:]).load(yaml: yaml), yaml) { error in
                XCTAssertEqual((error as? ConfigError)?.path, path, "\(yaml): \(error)")
            }
        }
    }

    func test_yamlAliasesComplexKeysAndDeepTrees_areRefusedNotTrapped() {
        func reason(_ yaml: String) -> String {
            do {
                _ = try ConfigLoader(environment: [:]).load(yaml: yaml)
                return "loaded"
            } catch let e as ConfigError { return e.reason } catch { return "\(error)" }
        }
        // An alias bomb: nine to the fourth strings from a few lines.
        XCTAssertEqual(reason("a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"), "YAML anchors and aliases are not accepted")
        // A mapping as a key: Yams force-unwraps it (found by the config-interpolation fuzzer).
        XCTAssertEqual(reason("? { a: 1 }\n: value\n"), "mapping keys must be plain text")
        XCTAssertEqual(reason(String(repeating: "[", count: 100) + String(repeating: "]", count: 100)), "YAML nested too deeply")
    }
}
