import Foundation
import HTTPTypes
import HummingbirdTesting
import XCTest
import Yams

/// `/api/v1/openapi.yaml` against the running routes: every documented operation exists and answers
/// with a status it documents (called with ids that do not exist and minimal bodies), and every route
/// in Sources/AdminAPI is documented.
final class OpenAPITests: XCTestCase {
    static func document(_ client: some TestClientProtocol) async throws -> [String: Any] {
        let r = try await client.get("/api/v1/openapi.yaml", token: nil)
        XCTAssertEqual(r.status, .ok, "served without a token")
        return try XCTUnwrap(try Yams.load(yaml: r.text) as? [String: Any])
    }

    func test_everyDocumentedOperation_existsAndAnswersAsDocumented() async throws {
        let h = try Harness()
        try await h.test { client in
            let doc = try await Self.document(client)
            XCTAssertEqual(doc["openapi"] as? String, "3.0.3")
            let paths = try XCTUnwrap(doc["paths"] as? [String: [String: Any]])
            var checked = 0
            for (path, operations) in paths.sorted(by: { $0.key < $1.key }) {
                let concrete = path.replacingOccurrences(of: "{id}", with: "01KZZZZZZZZZZZZZZZZZZZZZZZ")
                    .replacingOccurrences(of: "{name}", with: "no-such-tag").replacingOccurrences(of: "{tag}", with: "no-such-tag")
                    .replacingOccurrences(of: "{account}", with: "demo").replacingOccurrences(of: "{openid}", with: "oNOBODY")
                for (method, spec) in operations {
                    guard let op = spec as? [String: Any], let responses = op["responses"] as? [String: Any] else {
                        XCTFail("\(method) \(path) has no responses")
                        continue
                    }
                    let m = HTTPRequest.Method(rawValue: method.uppercased())!
                    let r = m == .get ? try await client.get("/api/v1" + concrete) : try await client.send(m, "/api/v1" + concrete, json: "{}")
                    XCTAssertFalse(r.status == .notFound && r.text.contains("no such route"), "\(method) \(path) is not a route")
                    XCTAssertTrue(responses.keys.contains(String(r.status.code)), "\(method) \(path) answered \(r.status.code) \(r.text), documented: \(responses.keys.sorted())")
                    checked += 1
                }
            }
            XCTAssertGreaterThan(checked, 30)
        }
    }

    func test_everyRouteInTheSources_isDocumented() async throws {
        let h = try Harness()
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dir = root.appendingPathComponent("Sources/AdminAPI")
        var routes = Set<String>()
        let pattern = try NSRegularExpression(pattern: #"group\.(get|post|put|patch|delete)\("([^"]+)""#)
        for file in try FileManager.default.contentsOfDirectory(atPath: dir.path) where file.hasSuffix(".swift") {
            let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                let method = String(text[Range(match.range(at: 1), in: text)!])
                var path = String(text[Range(match.range(at: 2), in: text)!])
                path = path.replacingOccurrences(of: #":([a-z]+)"#, with: "{$1}", options: .regularExpression)
                if path.contains("\\(action)") {
                    for action in ["start", "pause", "resume", "cancel"] { routes.insert("\(method) " + path.replacingOccurrences(of: "\\(action)", with: action)) }
                } else {
                    routes.insert("\(method) \(path)")
                }
            }
        }
        XCTAssertGreaterThan(routes.count, 30)
        let inSources = routes
        try await h.test { client in
            let doc = try await Self.document(client)
            let paths = try XCTUnwrap(doc["paths"] as? [String: [String: Any]])
            let documented = Set(paths.flatMap { path, ops in ops.keys.map { "\($0) \(path)" } })
            XCTAssertEqual(inSources.subtracting(documented).sorted(), [], "routes missing from openapi.yaml")
            XCTAssertEqual(documented.subtracting(inSources).sorted(), [], "documented operations with no route")
        }
    }
}
