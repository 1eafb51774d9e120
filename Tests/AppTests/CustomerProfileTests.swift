import App
import Foundation
import GatewayCore
import HummingbirdTesting
import RedisClient
import Store
import XCTest

/// Typed profile attributes: PATCH /api/v1/customers/{id}, the attribute indexes audiences read,
/// opt-in channels, and the Functions library they run in, on a real Redis.
final class CustomerProfileTests: XCTestCase {
    /// A harness with the shipped attributes plus a boolean and an enum, indexes prepared.
    func harness(configure: @escaping (inout GatewayConfig) -> Void = { _ in }) async throws -> (Harness, CustomerStore) {
        let h = try Harness { config in
            config.customers.attributes = CustomerAttributes(
                CustomerAttributes.defaults + [
                    .init(name: "vip_member", kind: .boolean), .init(name: "level", kind: .enumeration(["bronze", "silver", "gold"])),
                ], defaultTimeZone: "Asia/Shanghai")
            configure(&config)
        }
        let store = CustomerStore(redis: h.redis, config: h.config)
        try await store.prepareIndexes()
        return (h, store)
    }

    func follower(_ store: CustomerStore, _ h: Harness, _ openid: String, phone: String? = nil) async throws -> String {
        let id = try await store.upsertFollower(account: "demo", openid: openid, unionid: nil, profile: [:], nowMs: h.now).id
        if let phone { _ = try await store.bind(Identity(kind: .phone, value: phone), to: id, nowMs: h.now) }
        return id
    }

    func test_patch_setsTypedProfileTimezoneAndConsent_andNullRemoves() async throws {
        let (h, store) = try await harness()
        let id = try await follower(store, h, "o-ann", phone: "+8613800000001")
        _ = try await h.redis.send("SET", AddressSuppression(key: AddressSuppression.devKey).key(channel: "sms", address: "+8613800000001"), "opted_out|1")
        try await h.test { client in
            let r = try await client.send(.patch, "/api/v1/customers/\(id)", json: """
                {"profile": {"nickname": "Ann", "city": " Shanghai ", "spend": 1200.50, "expo_date": "2026-12-10T09:00:00+08:00",
                             "vip_member": true, "level": "gold"},
                 "timezone": "Europe/Berlin", "consent": {"sms": "granted", "email": "revoked"}, "source": "expo-form"}
                """)
            XCTAssertEqual(r.status, .ok, r.text)
            let profile = try XCTUnwrap(r.json["profile"] as? [String: Any])
            XCTAssertEqual(profile["nickname"] as? String, "Ann")
            XCTAssertEqual(profile["city"] as? String, "Shanghai", "trimmed")
            XCTAssertEqual(profile["spend"] as? Double, 1200.5)
            XCTAssertEqual(profile["expo_date"] as? String, "2026-12-10T09:00:00+08:00")
            XCTAssertEqual(profile["vip_member"] as? Bool, true)
            XCTAssertEqual(profile["level"] as? String, "gold")
            XCTAssertEqual(r.json["timezone"] as? String, "Europe/Berlin")
            let consent = try XCTUnwrap(r.json["consent"] as? [String: [String: Any]])
            XCTAssertEqual(consent["sms"]?["state"] as? String, "granted")
            XCTAssertEqual(consent["sms"]?["source"] as? String, "expo-form")
            XCTAssertEqual(consent["email"]?["state"] as? String, "revoked")
            XCTAssertNotNil(consent["sms"]?["updatedAt"] as? String)
            let optOut = try await h.redis.send("EXISTS", AddressSuppression(key: AddressSuppression.devKey).key(channel: "sms", address: "+8613800000001")).int
            XCTAssertEqual(optOut, 0, "a granted consent clears the number's earlier opt-out")
            // The Lua index reads the stored datetime with its offset: 09:00 in Shanghai is 01:00 UTC.
            let expo = try await h.redis.send("ZSCORE", h.shard(id).key(single: Keys.attributeIndex("expo_date")), id).string
            XCTAssertEqual(expo, "1796864400000")

            // Each consent change is on the timeline with its source and time, and so is the profile change.
            let timeline = try await store.timeline(id: id, limit: 20)
            let consentEntries = timeline.filter { $0.contains("\"consent.changed\"") }
            XCTAssertEqual(consentEntries.count, 2)
            XCTAssertTrue(consentEntries.allSatisfy { $0.contains("\"source\":\"expo-form\"") && $0.contains("\"at\":\(h.now)") })
            XCTAssertTrue(timeline.contains { $0.contains("\"profile.updated\"") && $0.contains("profile.spend") })

            // GET shows the same; null removes a field and its index entry.
            let got = try await client.get("/api/v1/customers/\(id)")
            XCTAssertEqual((got.json["profile"] as? [String: Any])?["level"] as? String, "gold")
            let removed = try await client.send(.patch, "/api/v1/customers/\(id)", json: #"{"profile": {"spend": null, "city": null}, "timezone": null}"#)
            XCTAssertEqual(removed.status, .ok, removed.text)
            let left = try XCTUnwrap(removed.json["profile"] as? [String: Any])
            XCTAssertNil(left["spend"])
            XCTAssertNil(left["city"])
            XCTAssertNil(removed.json["timezone"])
            let spendIndex = try await h.redis.send("ZSCORE", h.shard(id).key(single: Keys.attributeIndex("spend")), id).string
            XCTAssertNil(spendIndex)
            let cityIndex = try await h.indexMembers("pidx", "city").count
            XCTAssertEqual(cityIndex, 0)
        }
    }

    func test_patch_badInput_namesTheField_andStoresNothing() async throws {
        let (h, store) = try await harness()
        let id = try await follower(store, h, "o-bad")
        let before = try await h.redis.send("HGETALL", Keys.customer(id)).dictionary
        let timelineBefore = try await store.timeline(id: id, limit: 100)
        try await h.test { client in
            for (body, field) in [
                (#"{"profile": {"city": "Shanghai", "spend": "lots"}}"#, "profile.spend"),
                (#"{"profile": {"city": "Shanghai", "favourite_color": "red"}}"#, "profile.favourite_color"),
                (#"{"profile": {"level": "platinum"}}"#, "profile.level"),
                (#"{"profile": {"vip_member": "maybe"}}"#, "profile.vip_member"),
                (#"{"profile": {"expo_date": "next tuesday"}}"#, "profile.expo_date"),
                (#"{"profile": {"expo_date": "2026-02-30"}}"#, "profile.expo_date"),
                (#"{"profile": {"timezone": "Mars/Olympus"}}"#, "profile.timezone"),
                (#"{"profile": {"nickname": {"first": "A"}}}"#, "profile.nickname"),
                (#"{"profile": {"nickname": "A\u0007B"}}"#, "profile.nickname"),
                (#"{"profile": {"nope": null}}"#, "profile.nope"),
                (#"{"profile": ["city"]}"#, "profile"),
                (#"{"timezone": "Nowhere/City", "profile": {"city": "Shanghai"}}"#, "timezone"),
                (#"{"consent": {"sms": "yes"}}"#, "consent.sms"),
                (#"{"consent": {"fax": "granted"}}"#, "consent.fax"),
                (#"{"consent": {"sms": "granted"}, "source": "a b"}"#, "source"),
                (#"{"profile": {"city": "Shanghai"}, "stage": "SQL"}"#, "stage"),
                (#"{}"#, "nothing to change"),
                (#"[1]"#, "JSON object"),
                (#"{"profile": "#, "JSON object"),
            ] {
                let r = try await client.send(.patch, "/api/v1/customers/\(id)", json: body)
                XCTAssertEqual(r.status, .badRequest, body)
                let message = ((r.json["error"] as? [String: Any])?["message"] as? String) ?? ""
                XCTAssertTrue(message.contains(field), "\(body): \(message) should name \(field)")
            }
            let missing = try await client.send(.patch, "/api/v1/customers/01KZZZZZZZZZZZZZZZZZZZZZZZ", json: #"{"profile": {"city": "X"}}"#)
            XCTAssertEqual(missing.status, .notFound)
            let unauthorised = try await client.send(.patch, "/api/v1/customers/\(id)", json: #"{"profile": {"city": "X"}}"#, token: nil)
            XCTAssertEqual(unauthorised.status, .unauthorized)
        }
        let after = try await h.redis.send("HGETALL", Keys.customer(id)).dictionary
        XCTAssertEqual(after, before)
        let timelineAfter = try await store.timeline(id: id, limit: 100)
        XCTAssertEqual(timelineAfter, timelineBefore)
        let indexed = try await h.indexMembers("pidx", "city").count
        XCTAssertEqual(indexed, 0)
    }

    func test_patch_mergedCustomer_redirectsWithoutChanging() async throws {
        let (h, store) = try await harness()
        let a = try await follower(store, h, "o-a")
        let b = try await follower(store, h, "o-b")
        guard case .merged(let survivor, let loser) = try await store.bind(Identity(kind: .openid, account: "demo", value: "o-b"), to: a, nowMs: h.now) else {
            return XCTFail("expected a merge")
        }
        XCTAssertEqual(Set([a, b]), Set([survivor, loser]))
        try await h.test { client in
            let r = try await client.send(.patch, "/api/v1/customers/\(loser)", json: #"{"profile": {"city": "Beijing"}}"#)
            XCTAssertEqual(r.status, .permanentRedirect)
            XCTAssertEqual(r.headers[.location], "/api/v1/customers/\(survivor)")
        }
        let city = try await h.redis.send("HGET", Keys.customer(survivor), "profile.city").string
        XCTAssertNil(city)
    }

    func test_audience_filtersIndexedAttributesAndTimes() async throws {
        let (h, store) = try await harness()
        let day: Int64 = 86_400_000
        let ann = try await follower(store, h, "o-ann")
        let bob = try await follower(store, h, "o-bob")
        let cy = try await follower(store, h, "o-cy")
        h.now += 40 * day
        let dee = try await follower(store, h, "o-dee")  // seen 40 days after the others
        // Ann's expo is 5 days out, Bob's 20.
        try await h.test { client in
            for (id, body) in [
                (ann, #"{"profile": {"city": "Shanghai", "spend": 1500, "expo_date": "\#(Self.date(h.now + 5 * day))", "level": "gold"}}"#),
                (bob, #"{"profile": {"city": "shanghai", "spend": 999.5, "expo_date": "\#(Self.date(h.now + 20 * day))", "vip_member": true}}"#),
                (cy, #"{"profile": {"city": "北京", "spend": 1000}}"#),
                (dee, #"{"profile": {"company": "New York Bagels"}}"#),
            ] {
                let r = try await client.send(.patch, "/api/v1/customers/\(id)", json: body)
                XCTAssertEqual(r.status, .ok, r.text)
            }
            let cases: [(String, Set<String>)] = [
                ("profile.spend>=1000", [ann, cy]),
                ("profile.spend<1000", [bob]),
                ("profile.spend=999.5", [bob]),
                ("profile.city=Shanghai", [ann, bob]),
                ("profile.city=SHANGHAI & profile.spend>1000", [ann]),
                ("profile.city=北京", [cy]),
                ("profile.company=\"new york bagels\"", [dee]),
                ("profile.expo_date<now+7d", [ann]),
                ("profile.expo_date>=now+7d", [bob]),
                ("profile.expo_date<2030-01-01", [ann, bob]),
                ("profile.vip_member=true", [bob]),
                ("profile.level=gold | profile.vip_member=yes", [ann, bob]),
                ("lastSeen>now-30d", [dee]),
                ("lastSeen<=now-30d", [ann, bob, cy]),
                ("created<now-1h & !profile.city=shanghai", [cy]),
            ]
            for (expression, expected) in cases {
                let p = try await CampaignTests.preview(client, expression)
                XCTAssertEqual(p.sample, expected, expression)
                XCTAssertEqual(p.count, expected.count, expression)
            }
            for (expression, fragment) in [
                ("profile.nickname=Ann", "not indexed"),
                ("profile.city>Shanghai", "only ="),
                ("profile.spend>=lots", "number"),
                ("profile.shoe_size>40", "unknown attribute"),
                ("lastSeen>yesterday", "now-30d"),
                ("profile.level=platinum", "one of"),
                ("profile.spend>", "a value"),
            ] {
                let r = try await client.send(.post, "/api/v1/audiences/preview", json: JSONText.object([("expression", JSONText.quote(expression))]))
                XCTAssertEqual(r.status, .badRequest, expression)
                XCTAssertEqual(r.errorCode, "invalid_expression", expression)
                XCTAssertTrue(r.text.contains(fragment), "\(expression): \(r.text)")
            }
        }
        let leftovers = try await h.redis.send("KEYS", "tmp:*").strings
        XCTAssertEqual(leftovers, [])
    }

    static func date(_ ms: Int64) -> String {
        Date(timeIntervalSince1970: Double(ms) / 1000).formatted(.iso8601.year().month().day().time(includingFractionalSeconds: false).timeZone(separator: .omitted))
    }

    func test_mergeAndSchemaChange_keepTheAttributeIndexesRight() async throws {
        let (h, store) = try await harness()
        // Imported before the gateway declared `title` as indexed: not in the index yet.
        let imported = try await store.importBatch(
            [CustomerStore.ImportRow(identities: [Identity(kind: .email, value: "a@example.com")], profile: ["title": "CTO", "spend": "50"])], nowMs: h.now)
        XCTAssertEqual(imported.created, 1)
        let found = try await store.lookup(Identity(kind: .email, value: "a@example.com"))
        let id = try XCTUnwrap(found)
        let spend = try await h.redis.send("ZSCORE", h.shard(id).key(single: Keys.attributeIndex("spend")), id).string
        XCTAssertEqual(spend, "50")
        var titleIndex = try await h.indexMembers("pidx", "title").count
        XCTAssertEqual(titleIndex, 0)
        var config = h.config
        config.customers.attributes.attributes["title"]?.indexed = true
        let reindexed = try await CustomerStore(redis: h.redis, config: config).prepareIndexes()
        XCTAssertEqual(reindexed, 1, "a changed schema reindexes every customer once")
        titleIndex = try await h.indexMembers("pidx", "title").count
        XCTAssertEqual(titleIndex, 1)
        let again = try await CustomerStore(redis: h.redis, config: config).prepareIndexes()
        XCTAssertEqual(again, 0)

        // A merge moves the loser's attribute entries to the survivor.
        let other = try await follower(store, h, "o-merge")
        _ = try await store.patch(id: other, { var p = CustomerStore.ProfilePatch(); p.fields = ["profile.city": "Hangzhou"]; return p }(), nowMs: h.now)
        guard case .merged(let survivor, let loser) = try await store.bind(Identity(kind: .email, value: "a@example.com"), to: other, nowMs: h.now) else {
            return XCTFail("expected a merge")
        }
        let city = try await h.indexMembers("pidx", "city")
        XCTAssertEqual(city, ["hangzhou\u{1F}\(survivor)"])
        let spendAfter = try await h.indexMembers("pidx", "spend")
        XCTAssertEqual(spendAfter, [survivor])
        let lastSeen = try await h.redis.send("ZSCORE", Keys.lastSeenIndex, loser).string
        XCTAssertNil(lastSeen)
    }

    func test_optIn_channelsReachOnlyGrantedCustomers_inAudiences() async throws {
        let (h, store) = try await harness { $0.contactRules.requireOptIn = ["sms"] }
        let granted = try await follower(store, h, "o-1", phone: "+8613800000011")
        _ = try await follower(store, h, "o-2", phone: "+8613800000012")  // no consent recorded
        let revoked = try await follower(store, h, "o-3", phone: "+8613800000013")
        try await h.test { client in
            for (id, state) in [(granted, "granted"), (revoked, "revoked")] {
                let r = try await client.send(.patch, "/api/v1/customers/\(id)", json: #"{"consent": {"sms": "\#(state)"}}"#)
                XCTAssertEqual(r.status, .ok, r.text)
            }
            let sms = try await CampaignTests.preview(client, "consent:sms")
            XCTAssertEqual(sms.sample, [granted])
        }
        // Without the rule, a customer with a phone and no refusal is reachable.
        let open = AudienceStore(redis: h.redis, attributes: h.config.customers.attributes)
        let all = try await open.preview(.field(.consent, "sms"), sample: 10, nowMs: h.now)
        XCTAssertEqual(all.count, 2)
    }

    func test_functionsLibrary_isLoadedAgainAfterRedisLosesIt() async throws {
        let (h, store) = try await harness()
        let id = try await follower(store, h, "o-flush")
        // On every master (a cluster's), so the patch's node has lost it too.
        _ = try await h.redis.onEachMaster([["FUNCTION", "FLUSH"]])
        var patch = CustomerStore.ProfilePatch()
        patch.fields = ["profile.city": "Shenzhen"]
        let outcome = try await store.patch(id: id, patch, nowMs: h.now)
        XCTAssertEqual(outcome, .updated)
        let names = try await h.redis.onEachMaster([["FUNCTION", "LIST"]]).flatMap { ($0.replies[0].array ?? []).compactMap { $0.array?[1].string } }
        XCTAssertFalse(names.isEmpty, "loaded again where the patch ran")
        XCTAssertEqual(Set(names), ["scrm_\(StoreFunctions.library.version)"], "the library name carries its version")
    }
}
