import App
import Foundation
import GatewayCore
import Logging
import RedisClient

// scrm-gateway: reads SCRM_CONFIG (default config/gateway.yaml) and serves. See README.
let path = ProcessInfo.processInfo.environment["SCRM_CONFIG"] ?? "config/gateway.yaml"
var logger = Logger(label: "scrm-gateway")
logger.logLevel = Logger.Level(rawValue: ProcessInfo.processInfo.environment["SCRM_LOG_LEVEL"] ?? "info") ?? .info
do {
    let config = try ConfigLoader().load(path: path)
    let redis = RedisPool(
        try RedisConfiguration(
            url: config.redis.url, connections: config.redis.connections, connectTimeoutMs: config.redis.connectTimeoutMs,
            commandTimeoutMs: config.redis.commandTimeoutMs))
    logger.info("starting", metadata: ["config": .string(path), "port": .stringConvertible(config.server.port), "accounts": .stringConvertible(config.accounts.map(\.id))])
    if config.admin.token == nil { logger.warning("admin API disabled: set SCRM_ADMIN_TOKEN to enable /api/v1") }
    try await buildApplication(config: config, redis: redis, logger: logger).runService()
    redis.shutdown()
} catch let error as ConfigError {
    FileHandle.standardError.write(Data("scrm-gateway: \(error)\n".utf8))
    exit(78)
} catch let error as RedisURLError {
    FileHandle.standardError.write(Data("scrm-gateway: config error at redis.url: \(error)\n".utf8))
    exit(78)
}
