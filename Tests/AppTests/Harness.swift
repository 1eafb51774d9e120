import App
import CRMSync
import FakeProviders
import Foundation
import GatewayCore
import GatewayCrypto
import Hummingbird
import HummingbirdTesting
import NIOConcurrencyHelpers
import NIOCore
import RedisClient
import TestSupport
import XCTest

/// A gateway on a real redis-server with a movable clock and four accounts: plain, compat (demo),
/// safe, and a WeCom app using Tencent's sample key.
final class Harness: @unchecked Sendable {
    static let adminToken = "test-admin-token-0123456789"
    /// The gateway's own redis-server; nil when the tests run on a Redis Cluster.
    let server: RedisTestServer?
    let redis: RedisPool
    let config: GatewayConfig
    private let nowMs = NIOLockedValueBox<Int64>(1_790_000_000_000)
    /// The environment the adapter specs are resolved against (fake providers' URLs and keys).
    var adapterEnvironment: [String: String] = [:]
    /// CRM adapters whose webhooks the app serves.
    var crm: [CRMAdapterSpec] = []
    /// The reloadable scoring rules the admin API serves.
    var scoring: ScoringRulesSource?
    /// The harness clock, for everything that must agree with the API on what "now" is.
    var clock: GatewayClock { { [nowMs] in nowMs.withLockedValue { $0 } } }

    /// `aclRules`: the gateway's pool connects as an ACL user `scrm` with those command rules (the
    /// test's own checks then need a pool of their own, `RedisPool(server.configuration)`).
    /// `redis`: a pool of the test's own (a cluster it started); the harness shuts it down.
    init(adminToken: String? = Harness.adminToken, aclRules: String? = nil, redis given: RedisPool? = nil, configure: (inout GatewayConfig) -> Void = { _ in }) throws {
        _ = Observability.registry()  // as in main.swift: before the pool creates its metric handles
        if let given {
            server = nil
            redis = given
        } else if let aclRules {
            let rules = aclRules.split(separator: "\n").filter { !$0.hasPrefix("#") }.flatMap { $0.split(separator: " ").map(String.init) }
            let server = try RedisTestServer(extraArguments: ["--user", "scrm", "on", ">scrm-acl-secret", "~*", "resetchannels"] + rules)
            self.server = server
            var configuration = server.configuration
            configuration.username = "scrm"
            configuration.password = "scrm-acl-secret"
            redis = RedisPool(configuration)
        } else if let nodes = TestCluster.nodes {
            // scripts/test's cluster stage: every harness shares the cluster, emptied first.
            server = nil
            try TestCluster.flush(nodes)
            // Writes wait for a replica, as the gateway's default (redis.waitForReplicas) has them.
            let defaults = GatewayConfig().redis
            redis = RedisPool(
                cluster: nodes.prefix(3).map { RedisConfiguration(host: "127.0.0.1", port: $0, connections: 2, connectTimeoutMs: 500, commandTimeoutMs: 2000) },
                waitForReplicas: defaults.waitForReplicas, replicaWaitMs: defaults.replicaWaitMs,
                streamPartitions: defaults.streamPartitions)
        } else {
            let server = try RedisTestServer()
            self.server = server
            redis = RedisPool(server.configuration)
        }
        var config = try ConfigLoader(environment: [:]).load(yaml: Self.yaml)
        config.admin.token = adminToken
        // scripts/test's steps stage: every webhook as a cluster stores it, on a single Redis.
        if ProcessInfo.processInfo.environment["SCRM_TEST_INGEST_STEPS"] == "1" { config.webhooks.ingestInSteps = true }
        configure(&config)
        self.config = config
    }

    deinit { redis.shutdown() }

    static let yaml = """
        accounts:
          - { id: plain, platform: wechat, appId: wxplain000000001, token: plaintoken, mode: plain }
          - id: demo
            platform: wechat
            appId: wxb11529c136998cb6
            token: pamtest
            encodingAESKey: abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG
            mode: compat
            scenes: { expo2026: "source:expo-2026" }
            autoReply:
              - { match: prefix, keyword: hello, reply: "Hi ]]> there" }
          - { id: safe, platform: wechat, appId: wxsafe0000000001, token: safetoken, encodingAESKey: jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C, mode: safe }
          - { id: corp, platform: wecom, corpId: wx5823bf96d3bd56c7, token: QDG6eK, encodingAESKey: jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C, mode: safe }
        """

    var now: Int64 {
        get { nowMs.withLockedValue { $0 } }
        set { nowMs.withLockedValue { $0 = newValue } }
    }
    var nowSeconds: Int64 { now / 1000 }

    func builder(_ account: String) -> CallbackBuilder { CallbackBuilder(account: config.account(account)!) }

    func test(_ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let app = buildApplication(config: config, redis: redis, adapters: try loadAdapters(config: config, environment: adapterEnvironment), crm: crm, scoring: scoring, clock: { [nowMs] in nowMs.withLockedValue { $0 } })
        try await app.test(.router) { client in try await body(client) }
    }

    /// As `test`, on a real socket (`client.port`).
    func testLive(_ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let app = buildApplication(
            config: config, redis: redis, adapters: try loadAdapters(config: config, environment: adapterEnvironment), crm: crm, scoring: scoring,
            clock: { [nowMs] in nowMs.withLockedValue { $0 } })
        try await app.test(.live) { client in try await body(client) }
    }

    /// The index shard holding a customer's entries on this Redis (one per slot on a cluster).
    func shard(_ customer: String) -> IndexShard { (redis.isCluster ? IndexLayout.perSlot : .single).shard(customer: customer) }

    /// The keys matching a pattern, on every master.
    func keys(_ pattern: String) async throws -> [String] {
        try await redis.onEachMaster([["KEYS", pattern]]).flatMap { $0.1[0].strings }.sorted()
    }

    /// The members of one index (a set or sorted set) over every shard, sorted.
    func indexMembers(_ base: String, _ name: String? = nil) async throws -> [String] { try await indexMembersOnEveryShard(redis, base, name) }

    /// How many customers and stream:inbound entries there are (every shard and partition): what a
    /// refused webhook must leave unchanged.
    func customersAndInteractions() async throws -> [Int] {
        var stream = 0
        for partition in redis.streams.all(Keys.inboundStream) { stream += try await redis.send("XLEN", partition).int ?? 0 }
        return [try await indexMembers(Keys.customers).count, stream]
    }

    /// The fields of every entry on stream:inbound, all its partitions, oldest first.
    func inboundEntries() async throws -> [[String: String]] {
        var entries = [(id: [Int], fields: [String: String])]()
        for stream in redis.streams.all(Keys.inboundStream) {
            for e in try await redis.send("XRANGE", stream, "-", "+").array ?? [] {
                guard let parts = e.array, parts.count == 2, let id = parts[0].string else { continue }
                entries.append((id.split(separator: "-").compactMap { Int($0) }, parts[1].dictionary))
            }
        }
        return entries.sorted { $0.id.lexicographicallyPrecedes($1.id) }.map(\.fields)
    }

    /// Entries on stream:inbound, all its partitions.
    func inboundLength() async throws -> Int {
        try await redis.pipelineChecked(redis.streams.all(Keys.inboundStream).map { ["XLEN", $0] }).reduce(0) { $0 + ($1.int ?? 0) }
    }

    /// Customer records (live or merged stubs), counted on every master.
    func customerRecords() async throws -> Int { try await keys("cust:{*}").count }

    /// Keys in Redis (on every master of a cluster), not counting the audit log (which records refused
    /// admin calls too).
    func dbSize() async throws -> Int {
        var keys = 0
        for (_, replies) in try await redis.onEachMaster([["DBSIZE"]]) { keys += replies[0].int ?? 0 }
        return keys - (try await redis.send("EXISTS", Keys.auditStream).int ?? 0)
    }
}

private let nonceCounter = NIOLockedValueBox(0)

func freshNonce() -> String { "n\(nonceCounter.withLockedValue { $0 += 1; return $0 })\(SecureRandom.alphanumeric(6))" }

extension TestClientProtocol {
    /// POSTs a callback built by `CallbackBuilder`.
    func callback(_ request: CallbackBuilder.Request) async throws -> TestResponse {
        try await execute(uri: request.pathAndQuery, method: .post, headers: [.contentType: "text/xml"], body: ByteBuffer(string: request.body))
    }

    func get(_ uri: String, token: String? = Harness.adminToken) async throws -> TestResponse {
        var headers: HTTPFields = [:]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await execute(uri: uri, method: .get, headers: headers)
    }

    func send(_ method: HTTPRequest.Method, _ uri: String, json: String, token: String? = Harness.adminToken) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await execute(uri: uri, method: method, headers: headers, body: ByteBuffer(string: json))
    }
}

extension TestResponse {
    var text: String { String(buffer: body) }
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] ?? [:] }
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
}

extension Harness {
    /// A harness whose `demo` account calls the WeChat API fake (with an app secret) through the real
    /// `wechat-template` adapter's host, and the fakes it talks to.
    static func connectedToWeChat(wechatPageSize: Int = 10_000, configure: (inout GatewayConfig) -> Void = { _ in }) async throws -> (Harness, ProviderFakes) {
        let fakes = try await ProviderFakes.start(wechatPageSize: wechatPageSize)
        let h = try Harness { config in
            config.outbound.channels["wechat"] = "wechat-template"
            if let i = config.accounts.firstIndex(where: { $0.id == "demo" }) { config.accounts[i].appSecret = "demo-app-secret" }
            configure(&config)
        }
        h.adapterEnvironment = fakes.environment
        fakes.wechat.addAccount(appId: h.config.account("demo")!.appId, secret: "demo-app-secret")
        return (h, fakes)
    }
}
