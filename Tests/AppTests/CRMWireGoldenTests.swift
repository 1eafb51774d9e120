import CRMSync
import Foundation
import GatewayCore
import HTTPTransport
import Store
import XCTest

/// Every shipped CRM spec renders exactly its golden requests (adapters/crm/fixtures/<name>.*.txt) for
/// the same two customers: the batch upsert, and where the CRM has them, Marketo's custom activities
/// and each erasure form. `SCRM_UPDATE_GOLDEN=1` writes them (then review the diff).
final class CRMWireGoldenTests: XCTestCase {
    static let dir = CRMSyncTests.root.appendingPathComponent("adapters/crm").path
    static let environment = [
        "HUBSPOT_TOKEN": "pat-na1-golden", "HUBSPOT_CLIENT_SECRET": "golden-app-secret", "SALESFORCE_TOKEN": "00Dgolden!token", "SCRM_CRM_WEBHOOK_SECRET": "whsec-golden",
        "SCRM_CRM_WEBHOOK_URL": "https://crm.example.com/scrm", "MARKETO_CLIENT_ID": "golden-client", "MARKETO_CLIENT_SECRET": "golden-secret",
        "SCRM_MARKETO_API_BASE": "https://123-ABC-456.mktorest.com", "ELOQUA_SITE": "GoldenCorp", "ELOQUA_USER": "api.golden", "ELOQUA_PASSWORD": "golden-pw",
    ]

    /// Two customers as the take script snapshots them: one with everything, one with little.
    static let records: [CRMRecord] = [
        #"{"id":"01JGOLDEN00000000000000001","identities":["email:ann@example.com","phone:+8613800000001","unionid:oUNION1"],"tags":["interest:expo","vip"],"fields":{"score":"42.5","scoreAt":"1796000000000","stage":"MQL","tier":"A","owner":"alice","qualifiedAt":"1796000000000","profile.nickname":"Ann","profile.company":"Acme","consent.email":"granted|1796000000000"},"recent":[{"at":1796000000000,"type":"message.text","data":{"Content":"a demo please"}}]}"#,
        #"{"id":"01JGOLDEN00000000000000002","identities":[],"tags":{},"fields":{"score":"50","stage":"MQL","qualifiedAt":"1796000100000"},"recent":{}}"#,
    ].enumerated().map { i, doc in
        CRMRecord(CRMOutbox.Snapshot(customer: "01JGOLDEN0000000000000000\(i + 1)", seq: Int64(i + 1), document: JSONValue.parse(Array(doc.utf8))!))
    }

    static func transcript(_ r: HTTPRequest) -> String {
        var out = "\(r.method) \(r.url)\n"
        for (name, value) in r.headers { out += "\(name): \(value)\n" }
        return out + "\n" + String(decoding: r.body, as: UTF8.self) + "\n"
    }

    func test_everyShippedCRMSpecRendersItsGoldenRequests() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.dir).filter { $0.hasSuffix(".yaml") }.map { String($0.dropLast(5)) }.sorted()
        XCTAssertEqual(names, ["crm-eloqua", "crm-hubspot", "crm-marketo", "crm-salesforce", "crm-webhook"])
        let update = ProcessInfo.processInfo.environment["SCRM_UPDATE_GOLDEN"] == "1"
        if update { try FileManager.default.createDirectory(atPath: Self.dir + "/fixtures", withIntermediateDirectories: true) }
        let now: Int64 = 1_796_000_200_000
        for spec in try CRMAdapterSpecParser.load(directory: Self.dir, names: names, environment: Self.environment) {
            if spec.style == .eloqua {
                try check(spec.name, Self.eloquaCases(spec), update: update)
                continue
            }
            var wire = CRMWire(spec: spec)
            var cases: [(String, HTTPRequest)] = [
                ("upsert", wire.request(Self.records, token: "batch-token-1", nowMs: now, bearer: "marketo-access-token")),
                ("erase-by-record", wire.erasureRequest(customer: Self.records[0].customer, recordId: "901", nowMs: now, accessToken: "marketo-access-token")),
                ("erase-by-our-id", wire.erasureRequest(customer: Self.records[1].customer, recordId: nil, nowMs: now, accessToken: "marketo-access-token")),
            ]
            if spec.style == .marketo {
                var withActivities = spec
                withActivities.activities = .init(typeId: 100001, detailAttribute: "scrmDetail")
                wire = CRMWire(spec: withActivities)
                let inputs = wire.activities(Self.records[0], leadId: "901", after: 0).map(\.input)
                XCTAssertEqual(inputs.count, 1)
                cases.append(("activities", wire.activitiesRequest(inputs, bearer: "marketo-access-token")))
            }
            try check(spec.name, cases, update: update)
        }
    }

    func check(_ name: String, _ cases: [(String, HTTPRequest)], update: Bool) throws {
        for (what, request) in cases {
            let path = "\(Self.dir)/fixtures/\(name).\(what).txt"
            let rendered = Self.transcript(request)
            if update { try rendered.write(toFile: path, atomically: true, encoding: .utf8) }
            guard let golden = try? String(contentsOfFile: path, encoding: .utf8) else {
                XCTFail("no golden request \(path) (run with SCRM_UPDATE_GOLDEN=1, then review it)")
                continue
            }
            XCTAssertEqual(rendered, golden, "\(name) \(what) no longer renders its golden request")
        }
    }

    /// Eloqua's calls: discovery, the REST create/update/search, the Bulk API import's definition,
    /// upload and sync, and both erasure forms.
    static func eloquaCases(_ spec: CRMAdapterSpec) -> [(String, HTTPRequest)] {
        let wire = EloquaWire(spec: spec)
        let base = "https://secure.p03.eloqua.com"
        let ids = ["C_EmailAddress": "100001", "C_FirstName": "100002", "C_Company": "100004", "C_MobilePhone": "100017", "C_SCRM_Id1": "100201",
            "C_SCRM_Score1": "100202", "C_SCRM_Stage1": "100203", "C_SCRM_Tags1": "100204"]
        return [
            ("discover", wire.discoveryRequest()),
            ("create", wire.createRequest(base: base, records[0], fieldIds: ids)),
            ("update", wire.updateRequest(base: base, contactId: "1001", records[0], fieldIds: ids)),
            ("search", wire.searchRequest(base: base, field: "emailAddress", value: "ann@example.com")),
            ("import-definition", wire.importDefinitionRequest(base: base, name: "scrm-gateway crm-eloqua batch-token-1")),
            ("import-data", wire.importDataRequest(base: base, definition: "/contacts/imports/1183", rows: records.map(wire.row))),
            ("import-sync", wire.syncRequest(base: base, definition: "/contacts/imports/1183")),
            ("erase-by-record", wire.deleteRequest(base: base, contactId: "1001")),
            ("erase-by-our-id", wire.searchRequest(base: base, field: spec.idProperty, value: records[1].customer)),
        ]
    }
}
