import App
import Foundation
import Ingress
import HTTPTypes
import HummingbirdTesting
import XCTest
import Yams

/// `/api/v1/openapi.yaml` against the running routes: every documented operation exists and answers
/// with a status it documents (called with ids that do not exist and minimal bodies), and every route
/// the gateway serves under /api/v1 (its route table) is documented.
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

    /// Every operation has a unique operationId, and every success answer with a body its schema
    /// (`scripts/api-check` holds the live answers to them).
    func test_everyOperation_hasAnOperationIdAndResponseSchemas() async throws {
        let h = try Harness()
        try await h.test { client in
            let doc = try await Self.document(client)
            let paths = try XCTUnwrap(doc["paths"] as? [String: [String: Any]])
            let components = try XCTUnwrap(doc["components"] as? [String: Any])
            let shared = components["responses"] as? [String: [String: Any]] ?? [:]
            var ids = Set<String>()
            for (path, operations) in paths {
                for (method, spec) in operations {
                    let op = try XCTUnwrap(spec as? [String: Any])
                    let id = op["operationId"] as? String
                    XCTAssertNotNil(id, "\(method) \(path) has no operationId")
                    if let id { XCTAssertTrue(ids.insert(id).inserted, "operationId \(id) is used twice") }
                    for (status, answer) in op["responses"] as? [String: Any] ?? [:] where status.hasPrefix("2") && status != "204" {
                        var response = answer as? [String: Any] ?? [:]
                        if let ref = response["$ref"] as? String { response = shared[String(ref.split(separator: "/").last ?? "")] ?? [:] }
                        XCTAssertNotNil(response["content"], "\(method) \(path) \(status) documents no schema")
                    }
                }
            }
            XCTAssertGreaterThanOrEqual(ids.count, 70)
        }
    }

    func test_everyRouteServed_isDocumented() async throws {
        let h = try Harness { $0.outbound.linkSecret = "test-link-secret-0123456789" }
        let table = RouteTable()
        let adapters = try loadAdapters(config: h.config)
        _ = buildRouter(
            config: h.config, redis: h.redis, adapters: adapters, outbound: makeOutbound(config: h.config, redis: h.redis, adapters: adapters, clock: h.clock),
            crm: [], scoring: nil, table: table, clock: h.clock)
        let served = Set(
            table.declarations.filter { $0.path.hasPrefix("/api/v1/") && $0.path != "/api/v1/openapi.yaml" }
                .map { "\($0.method.lowercased()) \($0.path.dropFirst("/api/v1".count))" })
        XCTAssertGreaterThan(served.count, 60)
        try await h.test { client in
            let doc = try await Self.document(client)
            let paths = try XCTUnwrap(doc["paths"] as? [String: [String: Any]])
            let documented = Set(paths.flatMap { path, ops in ops.keys.map { "\($0) \(path)" } })
            XCTAssertEqual(served.subtracting(documented).sorted(), [], "routes missing from openapi.yaml")
            XCTAssertEqual(documented.subtracting(served).sorted(), [], "documented operations with no route")
        }
    }
}
