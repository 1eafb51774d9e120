import Foundation
import GatewayCore
import Outbound
import XCTest
import Yams

/// Every spec in adapters/ renders exactly its golden request (adapters/fixtures/<name>.request.txt)
/// from its input (adapters/fixtures/<name>.input.yaml).
final class AdapterFixtureTests: XCTestCase {
    static let adaptersDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("adapters").path

    /// `<name>.input.yaml` for every spec, and any `<name>.<case>.input.yaml` beside it (a spec that
    /// renders several shapes, such as each WeChat customer-service message type).
    func test_everySpecRendersItsGoldenRequest() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.adaptersDir).filter { $0.hasSuffix(".yaml") }
            .map { String($0.dropLast(5)) }.sorted()
        XCTAssertGreaterThanOrEqual(names.count, 10, "the shipped specs")
        let fixtureFiles = try FileManager.default.contentsOfDirectory(atPath: "\(Self.adaptersDir)/fixtures").filter { $0.hasSuffix(".input.yaml") }
        let update = ProcessInfo.processInfo.environment["SCRM_UPDATE_GOLDEN"] == "1"
        var cases = [(spec: String, fixture: String)]()
        for name in names {
            cases.append((name, name))
            for file in fixtureFiles.sorted() where file.hasPrefix(name + ".") && file != "\(name).input.yaml" {
                let middle = file.dropFirst(name.count + 1).dropLast(".input.yaml".count)
                if !middle.contains(".") { cases.append((name, "\(name).\(middle)")) }
            }
        }
        XCTAssertTrue(cases.contains { $0.fixture == "wechat-custom.miniprogram" }, "each customer-service message type has its fixture")
        for (name, fixtureName) in cases {
            let fixture = FixtureInput(path: "\(Self.adaptersDir)/fixtures/\(fixtureName).input.yaml")
            guard let fixture else {
                XCTFail("\(name): no fixture adapters/fixtures/\(fixtureName).input.yaml")
                continue
            }
            let catalog = try AdapterCatalog.load(directory: Self.adaptersDir, enabled: [name], environment: fixture.env)
            let adapter = try XCTUnwrap(catalog[name])
            let rendered = try adapter.render(fixture.payload, fixture.inputs).transcript
            let goldenPath = "\(Self.adaptersDir)/fixtures/\(fixtureName).request.txt"
            if update { try rendered.write(toFile: goldenPath, atomically: true, encoding: .utf8) }
            guard let golden = try? String(contentsOfFile: goldenPath, encoding: .utf8) else {
                XCTFail("\(name): no golden request \(goldenPath) (run with SCRM_UPDATE_GOLDEN=1, then review it)")
                continue
            }
            XCTAssertEqual(rendered, golden, "\(fixtureName) no longer renders its golden request")
        }
    }
}

/// One `<name>.input.yaml`.
struct FixtureInput {
    var env: [String: String]
    var inputs: RenderInputs
    var payload: OutboundPayload

    init?(path: String) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
            let root = (try? Yams.load(yaml: text)) as? [String: Any]
        else { return nil }
        env = ((root["env"] as? [String: Any]) ?? [:]).mapValues { "\($0)" }
        let i = root["inputs"] as? [String: Any] ?? [:]
        inputs = RenderInputs(
            nowMs: Int64(i["now"] as? Int ?? 0), nonce: i["nonce"] as? String ?? "nonce", accessToken: i["access_token"] as? String,
            receiptURL: i["receipt_url"] as? String, unsubscribeURL: i["unsubscribe_url"] as? String)
        let m = root["message"] as? [String: Any] ?? [:]
        let vars = (m["vars"] as? [String: Any] ?? [:]).mapValues { JSONValue.string("\($0)") }
        payload = OutboundPayload(
            messageId: m["message_id"] as? String ?? "m", to: m["to"] as? String ?? "", toName: m["to_name"] as? String,
            account: m["account"] as? String, template: m["template"] as? String, subject: m["subject"] as? String,
            text: m["text"] as? String, html: m["html"] as? String, link: m["link"] as? String, variables: vars,
            content: m["content"].map(Self.json))
        payload.reply = (m["reply"] as? [String: Any])?.mapValues { "\($0)" }
    }

    /// A YAML tree as JSON (numbers and booleans kept).
    static func json(_ v: Any) -> JSONValue {
        switch v {
        case let s as String: return .string(s)
        case let b as Bool: return .bool(b)
        case let i as Int: return .int(Int64(i))
        case let a as [Any]: return .array(a.map(json))
        case let o as [String: Any]: return .object(o.mapValues(json))
        default: return .string("\(v)")
        }
    }
}
