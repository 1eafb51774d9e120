import App
import Foundation
import GatewayCore
import HTTPTypes
import HummingbirdTesting
import NIOCore
import RedisClient
import Store
import TestSupport
import XCTest

/// POST /api/v1/customers/import (CSV and JSONL, streamed) and the import jobs, on a real Redis.
final class CustomerImportTests: XCTestCase {
    func harness() async throws -> (Harness, CustomerStore, CustomerImportStore) {
        let h = try Harness()
        let customers = CustomerStore(redis: h.redis, config: h.config)
        try await customers.prepareIndexes()
        return (h, customers, CustomerImportStore(redis: h.redis, config: h.config))
    }

    static func upload(_ client: some TestClientProtocol, _ body: String, type: String = "text/csv", query: String = "") async throws -> TestResponse {
        try await client.execute(
            uri: "/api/v1/customers/import" + query, method: .post,
            headers: [.contentType: type, .authorization: "Bearer \(Harness.adminToken)"], body: ByteBuffer(string: body))
    }

    /// Runs the import runner until the job is finished.
    static func finish(_ jobs: CustomerImportStore, _ id: String, clock: @escaping @Sendable () -> Int64) async throws -> CustomerImportStore.Job {
        let runner = CustomerImportRunner(store: jobs, clock: clock)
        for _ in 0..<200 {
            try await runner.pass()
            if let job = try await jobs.job(id: id), job.state == .completed || job.state == .failed { return job }
        }
        XCTFail("the job did not finish")
        throw CancellationError()
    }

    func test_csvImport_createsUpdatesAndMerges_rejectingBadLinesByNumber() async throws {
        let (h, customers, jobs) = try await harness()
        // Two customers the import will find, and link into one (row 3 holds both their identities).
        let follower = try await customers.upsertFollower(account: "demo", openid: "o-known", unionid: nil, profile: [:], nowMs: h.now).id
        try await customers.importBatch([.init(identities: [Identity(kind: .email, value: "known@example.com")])], nowMs: h.now)
        let csv = """
            phone,email,openid,account,external_id,profile.nickname,profile.city,profile.spend,profile.expo_date,tags,consent.sms,consent.email\r
            +8613900000001,ann@example.com,,,crm-1,"Ann ""A"" Lee",Shanghai,1200,2026-12-10,vip;expo-2026,granted,\r
            +8613900000002,known@example.com,o-known,demo,,Bob,Beijing,,,,,revoked\r
            ,,,,,Nobody,,,,,,\r
            +86 139 0000 0004,dee@example.com,,,,Dee,"Hang
            zhou",lots,,,,\r
            +8613900000005,ANN@example.com,,,,Ann again,,,,webinar,,\r
            not-a-phone,,,,,,,,,,,\r
            +8613900000006,,oX,nope,,,,,,,,\r
            +8613900000007,,,,,,,,,bad tag!,,\r
            +8613900000008,,,,,"unclosed,,,,,,
            """
        try await h.test { client in
            let r = try await Self.upload(client, csv)
            XCTAssertEqual(r.status, .accepted, r.text)
            let id = try XCTUnwrap(r.json["id"] as? String)
            XCTAssertEqual(r.headers[.location], "/api/v1/imports/\(id)")
            let job = try await Self.finish(jobs, id, clock: h.clock)
            XCTAssertEqual(job.state, .completed)
            XCTAssertEqual(job.rowsRead, 9)
            XCTAssertEqual(job.valid, 3)
            XCTAssertEqual(job.created, 1, "ann")
            XCTAssertEqual(job.updated, 2, "the follower (with the known email merged in), ann again")
            XCTAssertEqual(job.merged, 1)
            XCTAssertEqual(job.rejected, 6)
            XCTAssertEqual(
                job.rejections, [
                    .init(line: 4, reason: "no identity: the row needs a phone, email, openid, unionid or external_id"),
                    .init(line: 5, reason: "profile.city: must not contain control characters"),  // a text attribute is one line
                    .init(line: 8, reason: "phone: phone must be E.164, e.g. +8613800138000"),
                    .init(line: 9, reason: "account nope is not a configured account"),
                    .init(line: 10, reason: "tags: bad tag!: \(TagName.rule)"),
                    .init(line: 11, reason: "a quoted field is not closed"),
                ])

            let got = try await client.get("/api/v1/imports/\(id)")
            XCTAssertEqual(got.json["state"] as? String, "completed")
            XCTAssertEqual(got.json["percentApplied"] as? Double, 100)
            XCTAssertEqual((got.json["rejections"] as? [[String: Any]])?.count, 6)
            let list = try await client.get("/api/v1/imports")
            XCTAssertEqual((list.json["imports"] as? [[String: Any]])?.first?["id"] as? String, id)
        }
        let annId = try await customers.lookup(Identity(kind: .email, value: "ann@example.com"))
        let ann = try XCTUnwrap(annId)
        let byExternal = try await customers.lookup(Identity(kind: .external, value: "crm-1"))
        let byPhone = try await customers.lookup(Identity(kind: .phone, value: "+8613900000005"))
        XCTAssertEqual(byExternal, ann)
        XCTAssertEqual(byPhone, ann, "the second row found Ann by her email, whatever its case")
        guard case .found(let a) = try await customers.customer(id: ann) else { return XCTFail("ann") }
        XCTAssertEqual(a.fields["profile.nickname"], "Ann again", "a later row updates the field")
        XCTAssertEqual(a.fields["profile.city"], "Shanghai", "an empty cell leaves the field as it was")
        XCTAssertEqual(a.fields["profile.expo_date"], "2026-12-10T00:00:00+08:00")
        XCTAssertEqual(a.tags, ["expo-2026", "vip", "webinar"])
        XCTAssertEqual(a.consent["sms"]?.state, "granted")
        XCTAssertTrue(a.fields["consentSource.sms"]?.hasPrefix("import:") == true)
        let spend = try await h.redis.send("ZSCORE", h.shard(ann).key("pidx", "spend"), ann).string
        XCTAssertEqual(spend, "1200", "imported attributes are indexed")

        let bobId = try await customers.lookup(Identity(kind: .email, value: "known@example.com"))
        let bob = try XCTUnwrap(bobId)
        let viaOpenid = try await customers.lookup(Identity(kind: .openid, account: "demo", value: "o-known"))
        XCTAssertEqual(viaOpenid, bob)
        let followerNow = try await h.redis.send("HGET", Keys.customer(follower), "mergedInto").string
        XCTAssertTrue(bob == follower || followerNow == bob, "the follower is bob, or was merged into bob")
        let live = try await h.indexMembers("customers").count
        XCTAssertEqual(live, 2, "ann, and bob (the follower and the known email merged)")
        let leftovers = try await h.redis.send("KEYS", "imp:*:c:*").strings
        XCTAssertEqual(leftovers, [], "applied chunks are removed")
    }

    func test_jsonlImport_andDryRun_andRefusals() async throws {
        let (h, customers, jobs) = try await harness()
        let jsonl = """
            {"email": "j1@example.com", "profile": {"spend": 7, "city": "Hangzhou"}, "tags": ["jsonl"], "consent.email": "granted"}
            {"phone": "+8613900000011", "profile.nickname": "Flat"}

            {"phone": 12}
            {"email": "j2@example.com", "profile": {"shoe_size": 44}}
            [1, 2]
            """
        try await h.test { client in
            let before = try await h.dbSize()
            let dry = try await Self.upload(client, jsonl, type: "application/x-ndjson", query: "?dryRun=true")
            XCTAssertEqual(dry.status, .ok, dry.text)
            XCTAssertEqual(dry.json["dryRun"] as? Bool, true)
            XCTAssertEqual(dry.json["valid"] as? Int, 2)
            XCTAssertEqual(dry.json["rejected"] as? Int, 3)
            let lines = (dry.json["rejections"] as? [[String: Any]])?.compactMap { $0["line"] as? Int }
            XCTAssertEqual(lines, [4, 5, 6])
            let afterDry = try await h.dbSize()
            XCTAssertEqual(afterDry, before, "a dry run stores nothing")

            let r = try await Self.upload(client, jsonl, type: "application/x-ndjson; charset=utf-8")
            XCTAssertEqual(r.status, .accepted, r.text)
            let job = try await Self.finish(jobs, try XCTUnwrap(r.json["id"] as? String), clock: h.clock)
            XCTAssertEqual(job.created, 2)
            XCTAssertEqual(job.rejected, 3)

            // A refused import stores nothing at all.
            let count = try await h.dbSize()
            for (body, type, status, code) in [
                ("phone,shoe\n+8613900000099,44\n", "text/csv", HTTPResponse.Status.badRequest, "invalid_import"),
                ("phone,phone\n+8613900000099,+8613900000098\n", "text/csv", .badRequest, "invalid_import"),
                ("profile.city\nShanghai\n", "text/csv", .badRequest, "invalid_import"),
                ("", "text/csv", .badRequest, "invalid_import"),
                ("{}", "application/json", .unsupportedMediaType, "unsupported_media_type"),
            ] {
                let bad = try await Self.upload(client, body, type: type)
                XCTAssertEqual(bad.status, status, body)
                XCTAssertEqual(bad.errorCode, code, body)
            }
            let unauthorised = try await client.execute(
                uri: "/api/v1/customers/import", method: .post, headers: [.contentType: "text/csv"], body: ByteBuffer(string: "phone\n+8613900000099\n"))
            XCTAssertEqual(unauthorised.status, .unauthorized)
            let after = try await h.dbSize()
            XCTAssertEqual(after, count)
        }
        let j1 = try await customers.lookup(Identity(kind: .email, value: "j1@example.com"))
        guard case .found(let c) = try await customers.customer(id: try XCTUnwrap(j1)) else { return XCTFail("j1") }
        XCTAssertEqual(c.fields["profile.spend"], "7")
        XCTAssertEqual(c.tags, ["jsonl"])
        XCTAssertEqual(c.consent["email"]?.state, "granted")
    }

    func test_importOverTheLimit_is413_andStoresNothing() async throws {
        let small = try Harness { $0.customers.importMaxBytes = 4096 }
        let rows = (0..<400).map { String(format: "+86139%08d", $0) }.joined(separator: "\n")
        try await small.test { client in
            let r = try await Self.upload(client, "phone\n" + rows + "\n")
            XCTAssertEqual(r.status, .contentTooLarge)
            XCTAssertEqual(r.errorCode, "body_too_large")
        }
        let smallJobs = CustomerImportStore(redis: small.redis, config: small.config)
        let recent = try await smallJobs.recent(limit: 5).jobs
        XCTAssertTrue(recent.allSatisfy { $0.state == .failed }, "\(recent.map(\.state))")
        let chunks = try await small.redis.send("KEYS", "imp:*:c:*").strings
        XCTAssertEqual(chunks, [])
        let customers = try await small.redis.send("ZCARD", Keys.customers).int
        XCTAssertEqual(customers, 0)
    }

    func test_checkpoint_appliesEachChunkOnce_andAStalledUploadFails() async throws {
        let (h, _, jobs) = try await harness()
        let id = ULID.make(milliseconds: h.now)
        try await jobs.create(id: id, format: "csv", source: "test", nowMs: h.now)
        var received = CustomerImportStore.Received()
        received.rows = try (0..<3).map {
            try CustomerImportRow(line: $0 + 2, cells: [("email", "c\($0)@example.com")], attributes: h.config.customers.attributes, accounts: [])
        }
        received.rowsRead = 3
        let next = try await jobs.spool(id: id, received, chunk: 0, keptRejections: 0, nowMs: h.now)
        XCTAssertEqual(next, 1)
        // Two processes reach the same chunk: the function applies it once.
        let chunk = try await h.redis.send("GET", Keys.customerImportChunk(id, 0)).string
        let first = try await jobs.step(id: id, nowMs: h.now)
        XCTAssertEqual(first, .applied(created: 3, updated: 0, merged: 0))
        _ = try await h.redis.send("SET", Keys.customerImportChunk(id, 0), try XCTUnwrap(chunk))
        let replay = try await h.redis.fcall(
            StoreFunctions.library, "customers_import_chunk", keys: [Keys.customerImport(id), Keys.customerImportChunk(id, 0)],
            args: ["0", String(h.now), "500", "1000", "test"]
        ).array?.first?.string
        XCTAssertEqual(replay, "skip")
        let customers = try await h.indexMembers("customers").count
        XCTAssertEqual(customers, 3)
        // The uploader went silent (its process died): the job fails, the rows applied stay.
        let early = try await jobs.step(id: id, nowMs: h.now + 1000)
        XCTAssertEqual(early, .waiting)
        let late = try await jobs.step(id: id, nowMs: h.now + CustomerImportStore.receiveTimeoutMs + 1)
        XCTAssertEqual(late, .done)
        let job = try await jobs.job(id: id)
        XCTAssertEqual(job?.state, .failed)
        XCTAssertEqual(job?.created, 3)
        let active = try await h.redis.send("SMEMBERS", Keys.activeCustomerImports).strings
        XCTAssertEqual(active, [])
    }
}

/// GET /api/v1/audiences/export: CSV streamed a page at a time.
extension CustomerImportTests {
    func test_export_streamsTheAudienceAsCSV_withChosenColumns_andRefusesBadInput() async throws {
        let (h, customers, _) = try await harness()
        var rows = (0..<1203).map { i in
            CustomerStore.ImportRow(
                identities: [Identity(kind: .email, value: "e\(i)@example.com")], tags: i % 2 == 0 ? ["even"] : ["odd"],
                profile: ["city": i % 3 == 0 ? "Shanghai" : "Beijing", "spend": String(i)])
        }
        rows[0].profile["nickname"] = "=HYPERLINK(\"x\"), \"A\""
        for start in stride(from: 0, to: rows.count, by: 500) { try await customers.importBatch(Array(rows[start..<min(start + 500, rows.count)]), nowMs: h.now) }
        try await h.test { client in
            let r = try await client.get("/api/v1/audiences/export?expr=even%20%26%20profile.spend%3E%3D100&fields=id,email,profile.spend,profile.nickname,tags")
            XCTAssertEqual(r.status, .ok)
            XCTAssertEqual(r.headers[.contentType], "text/csv; charset=utf-8")
            let lines = r.text.components(separatedBy: "\r\n").filter { !$0.isEmpty }
            XCTAssertEqual(lines.first, "id,email,profile.spend,profile.nickname,tags")
            XCTAssertEqual(lines.count - 1, (100..<1203).filter { $0 % 2 == 0 }.count, "every even customer with spend >= 100, once")
            let emails = Set(lines.dropFirst().map { $0.split(separator: ",")[1] })
            XCTAssertEqual(emails.count, lines.count - 1)
            XCTAssertTrue(emails.contains("e100@example.com") && !emails.contains("e98@example.com") && !emails.contains("e101@example.com"))

            // The default columns; a cell a spreadsheet would run as a formula is defused and quoted.
            let all = try await client.get("/api/v1/audiences/export?expr=even%20%26%20profile.spend%3C1")
            let allLines = all.text.components(separatedBy: "\r\n").filter { !$0.isEmpty }
            let header = allLines.first ?? "", row = allLines.dropFirst().first ?? ""
            XCTAssertTrue(header.hasPrefix("id,phone,email,tags,profile.city,profile.company"), header)
            XCTAssertEqual(allLines.count, 2)
            XCTAssertTrue(row.contains(#""'=HYPERLINK(""x""), ""A""""#), row)

            for (uri, code) in [
                ("/api/v1/audiences/export", "invalid_expression"), ("/api/v1/audiences/export?expr=even%20%26", "invalid_expression"),
                ("/api/v1/audiences/export?expr=even&fields=id,password", "invalid_fields"),
                ("/api/v1/audiences/export?expr=profile.nickname%3DAnn", "invalid_expression"),
            ] {
                let bad = try await client.get(uri)
                XCTAssertEqual(bad.status, .badRequest, uri)
                XCTAssertEqual(bad.errorCode, code, uri)
            }
        }
        let leftovers = try await h.keys("tmp:*")
        XCTAssertEqual(leftovers, [], "the export's temporary sets are removed")
    }
}

extension CustomerImportTests {
    func test_aFileOfBadRows_countsThemAll_keepsTheFirstThousand() async throws {
        let (h, _, jobs) = try await harness()
        let csv = "phone,profile.spend\n" + (0..<2500).map { "not-a-phone-\($0),1\n" }.joined() + "+8613900000088,5\n"
        try await h.test { client in
            let r = try await Self.upload(client, csv)
            XCTAssertEqual(r.status, .accepted, r.text)
            let job = try await Self.finish(jobs, try XCTUnwrap(r.json["id"] as? String), clock: h.clock)
            XCTAssertEqual(job.rejected, 2500)
            XCTAssertEqual(job.rejections.count, CustomerImportStore.keptRejections)
            XCTAssertEqual(job.rejections.first?.line, 2)
            XCTAssertEqual(job.rejections.last?.line, 1001)
            XCTAssertEqual(job.created, 1, "the good row at the end still goes in")
        }
    }
}
