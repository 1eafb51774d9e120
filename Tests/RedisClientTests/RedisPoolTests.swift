import RedisClient
import TestSupport
import XCTest

final class RedisPoolTests: XCTestCase {
    func test_sendAndPipeline_roundTripValuesOfEveryReplyType() async throws {
        let server = try RedisTestServer()
        let redis = RedisPool(server.configuration)
        defer { redis.shutdown() }

        try await redis.send("SET", "k", "välue ✓")
        let got11 = try await redis.send("GET", "k").string
        XCTAssertEqual(got11, "välue ✓")
        let replies = try await redis.pipeline([["INCR", "n"], ["INCRBY", "n", "4"], ["GET", "missing"], ["RPUSH", "l", "a", "b"], ["LRANGE", "l", "0", "-1"], ["HGET"]])
        XCTAssertEqual(replies[0], .integer(1))
        XCTAssertEqual(replies[1], .integer(5))
        XCTAssertEqual(replies[2], .null)
        XCTAssertEqual(replies[4].strings, ["a", "b"])
        guard case .error(let message) = replies[5] else { return XCTFail("expected an error reply in place") }
        XCTAssertTrue(message.contains("wrong number of arguments"))
    }

    func test_serverError_namesTheCommand() async throws {
        let server = try RedisTestServer()
        let redis = RedisPool(server.configuration)
        defer { redis.shutdown() }
        try await redis.send("SET", "s", "x")
        do {
            try await redis.send("LPUSH", "s", "y")
            XCTFail("expected WRONGTYPE")
        } catch let error as RedisError {
            XCTAssertEqual(error.kind, .server)
            XCTAssertEqual(error.command, "LPUSH")
            XCTAssertTrue(error.message.hasPrefix("WRONGTYPE"))
        }
    }

    func test_eval_loadsScriptAfterNoScriptAndThenUsesSha() async throws {
        let server = try RedisTestServer()
        let redis = RedisPool(server.configuration)
        defer { redis.shutdown() }
        let script = RedisScript(name: "incr2", source: "return redis.call('INCRBY', KEYS[1], ARGV[1]) * 2")
        let got42 = try await redis.eval(script, keys: ["c"], args: ["3"]).int
        XCTAssertEqual(got42, 6)
        let got44 = try await redis.send("SCRIPT", "EXISTS", script.sha1).array
        XCTAssertEqual(got44, [.integer(1)])
        let got46 = try await redis.eval(script, keys: ["c"], args: ["1"]).int
        XCTAssertEqual(got46, 8)
        try await redis.send("SCRIPT", "FLUSH")
        let got49 = try await redis.eval(script, keys: ["c"], args: ["1"]).int
        XCTAssertEqual(got49, 10)
    }

    func test_concurrentCallers_eachGetTheirOwnReply() async throws {
        let server = try RedisTestServer()
        let redis = RedisPool(server.configuration)
        defer { redis.shutdown() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<2000 {
                group.addTask {
                    let reply = try await redis.pipeline([["SET", "key\(i)", "v\(i)"], ["GET", "key\(i)"]])
                    XCTAssertEqual(reply[1].string, "v\(i)")
                }
            }
            try await group.waitForAll()
        }
        let got66 = try await redis.send("DBSIZE").int
        XCTAssertEqual(got66, 2000)
    }

    func test_redisRestart_failsWithConnectionErrorThenRecoversByItself() async throws {
        let server = try RedisTestServer()
        let redis = RedisPool(server.configuration)
        defer { redis.shutdown() }
        try await redis.send("SET", "durable", "1")
        server.stop()
        do {
            try await redis.send("GET", "durable")
            XCTFail("expected a connection error while Redis is down")
        } catch let error as RedisError {
            XCTAssertEqual(error.kind, .connection)
        }
        try server.start()
        var value: String?
        for _ in 0..<50 where value == nil {
            value = try? await redis.send("GET", "durable").string
            if value == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        XCTAssertEqual(value, "1", "the pool reconnects and AOF kept the key")
    }

    func test_url_parsesHostPortCredentialsDatabaseAndUnixSockets() throws {
        let c = try RedisConfiguration(url: "redis://10.0.0.5:6380")
        XCTAssertEqual(c.host, "10.0.0.5")
        XCTAssertEqual(c.port, 6380)
        XCTAssertNil(c.password)
        XCTAssertEqual(try RedisConfiguration(url: "redis://localhost").port, 6379)
        let acl = try RedisConfiguration(url: "redis://scrm:p%40ss%3Aw0rd@db.internal:6390/2")
        XCTAssertEqual([acl.username, acl.password, acl.host], ["scrm", "p@ss:w0rd", "db.internal"])
        XCTAssertEqual([acl.port, acl.database], [6390, 2])
        let legacy = try RedisConfiguration(url: "redis://:secret@host")
        XCTAssertNil(legacy.username)
        XCTAssertEqual(legacy.password, "secret")
        let unix = try RedisConfiguration(url: "unix:///run/redis/redis.sock?db=3&user=scrm&password=pw")
        XCTAssertEqual(unix.unixSocket, "/run/redis/redis.sock")
        XCTAssertEqual([unix.username, unix.password], ["scrm", "pw"])
        XCTAssertEqual(unix.database, 3)
        XCTAssertEqual(unix.endpoint, "/run/redis/redis.sock")
        for bad in ["http://host", "redis://host:99999", "rediss://host:6380", "redis://host/x", "redis://u:@host", "unix://relative.sock", "unix:///s.sock?user=u",
            "unix:///s.sock?tls=1"]
        {
            XCTAssertThrowsError(try RedisConfiguration(url: bad), bad) { error in
                XCTAssertFalse("\(error)".contains("secret"), "an error never repeats the password")
            }
        }
    }

    func test_auth_aclUserLegacyPasswordUnixSocketAndDatabase() async throws {
        let socket = FileManager.default.temporaryDirectory.appendingPathComponent("scrm-redis-\(UUID().uuidString.prefix(8)).sock").path
        let server = try RedisTestServer(extraArguments: [
            "--requirepass", "legacy-secret", "--unixsocket", socket, "--unixsocketperm", "700",
            "--user", "scrm", "on", ">scrm-secret", "~*", "&*", "+@all",
        ])
        func pool(_ url: String) throws -> RedisPool { RedisPool(try RedisConfiguration(url: url, connections: 1, connectTimeoutMs: 500)) }

        let user = try pool("redis://scrm:scrm-secret@127.0.0.1:\(server.port)/2")
        defer { user.shutdown() }
        try await user.send("SET", "k", "in-db-2")
        let legacy = try pool("redis://:legacy-secret@127.0.0.1:\(server.port)")
        defer { legacy.shutdown() }
        let db0 = try await legacy.send("GET", "k")
        XCTAssertTrue(db0.isNull, "the key went to database 2")
        let overSocket = try pool("unix://\(socket)?db=2&user=scrm&password=scrm-secret")
        defer { overSocket.shutdown() }
        let viaSocket = try await overSocket.send("GET", "k").string
        XCTAssertEqual(viaSocket, "in-db-2")

        for url in ["redis://scrm:wrong@127.0.0.1:\(server.port)", "redis://127.0.0.1:\(server.port)"] {
            let refused = try pool(url)
            defer { refused.shutdown() }
            do {
                try await refused.send("PING")
                XCTFail("\(url) was let in")
            } catch let error as RedisError {
                XCTAssertEqual(error.kind, .authentication, "\(error)")
                XCTAssertFalse(error.description.contains("wrong"), "the error never repeats the password")
            }
        }
    }
}
