import App
import CRMSync
import Foundation
import GatewayCore
import Logging
import Outbound
import RedisClient
import ServiceLifecycle
import Store

// scrm-gateway: reads SCRM_CONFIG (default config/gateway.yaml) and serves until SIGTERM/SIGINT,
// then drains in-flight requests before closing Redis. See README.
let path = ProcessInfo.processInfo.environment["SCRM_CONFIG"] ?? "config/gateway.yaml"
// SCRM_LOG_FORMAT=json: one JSON object per line (with one `access` line per request); else text.
// SCRM_LOG_LEVEL: trace, debug, info (default), notice, warning, error, critical.
let logLevel = Logger.Level(rawValue: ProcessInfo.processInfo.environment["SCRM_LOG_LEVEL"] ?? "info") ?? .info
let jsonLogs = ProcessInfo.processInfo.environment["SCRM_LOG_FORMAT"] == "json"
LoggingSystem.bootstrap { label in
    var handler: any LogHandler = jsonLogs ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
    handler.logLevel = logLevel
    return handler
}
let logger = Logger(label: "scrm-gateway")
// Metrics first: handles created before the bootstrap (the Redis pool's latency timer) would stay no-ops.
_ = Observability.registry()
do {
    // `file:/run/secrets/NAME` values are read here, once.
    let environment = try SecretFiles.resolve(ProcessInfo.processInfo.environment)
    let config = try ConfigLoader(environment: environment).load(path: path)
    let published = PublishedSecrets.uses(config)
    if !published.isEmpty {
        guard environment["SCRM_ENV"] == "dev" else {
            throw ConfigError(
                path: published.joined(separator: ", "),
                reason: "a published example secret (anyone could forge this account's callbacks); set your own, or SCRM_ENV=dev for a local demo")
        }
        logger.warning("SCRM_ENV=dev: accounts use published example secrets", metadata: ["where": .string(published.joined(separator: ", "))])
    }
    if config.privacy.suppressionKey == nil {
        guard environment["SCRM_ENV"] == "dev" else {
            throw ConfigError(
                path: "privacy.suppressionKey",
                reason: "not set: opt-outs are stored under a keyed hash of the address; set SCRM_SUPPRESSION_KEY (16+ characters, kept for good)")
        }
        logger.warning("SCRM_ENV=dev: opt-outs are hashed with the built-in dev key (privacy.suppressionKey unset)")
    }
    let adapters = try loadAdapters(config: config, environment: environment)
    let redis = try makeRedisPool(config.redis)
    let redisPath = config.redis.cluster.isEmpty ? "redis.url" : "redis.cluster"
    // Wrong or missing credentials stop start-up; an unreachable Redis does not (it may be starting too).
    do { try await redis.send("PING") } catch let error as RedisError where error.kind == .authentication {
        throw ConfigError(path: redisPath, reason: "Redis refused the credentials: \(error.message)")
    } catch {
        logger.warning("Redis is not reachable yet; /readyz answers 503 until it is", metadata: ["redis": .string(redisPath)])
    }
    logger.info("starting", metadata: ["config": .string(path), "port": .stringConvertible(config.server.port), "accounts": .stringConvertible(config.accounts.map(\.id)),
        "adapters": .stringConvertible(adapters.adapters.keys.sorted())])
    if config.admin.token == nil { logger.warning("admin API disabled: set SCRM_ADMIN_TOKEN to enable /api/v1") }
    if config.outbound.linkSecret == nil { logger.warning("no outbound.linkSecret: marketing email has no unsubscribe link and is skipped") }
    let scoring = try ScoringWorker.source(config: config)
    let crm = try loadCRMAdapters(config: config, environment: environment)
    let outbound = makeOutbound(config: config, redis: redis, adapters: adapters)
    // With server.adminPort, two listeners: the public one (webhooks, links) and the private admin one.
    let listeners: [Listener] = config.server.adminPort == nil ? [.combined] : [.public, .admin]
    let apps = listeners.map { listener in
        ServiceGroupConfiguration.ServiceConfiguration(
            service: buildApplication(
                config: config, redis: redis, adapters: adapters, outbound: outbound, crm: crm, scoring: scoring, listener: listener, logger: logger))
    }
    let services = ServiceGroup(
        configuration: .init(
            services: [
                .init(service: RedisPoolService(pool: redis))] + apps + [
                .init(service: OutboundService(parts: outbound)),
                .init(service: CRMService(specs: crm, config: config, redis: redis, logger: logger)),
                .init(service: ErasureService(config: config, redis: redis, crmAdapters: crm.map(\.name))),
            ] + (scoring.map { [.init(service: ScoringService(worker: ScoringWorker(redis: redis, source: $0, timelineCap: config.customers.timelineCap, attributes: config.customers.attributes, clock: systemClock)))] } ?? []),
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
    try await services.run()
} catch let error as ConfigError {
    FileHandle.standardError.write(Data("scrm-gateway: \(error)\n".utf8))
    exit(78)
} catch let error as AdapterSpecError {
    FileHandle.standardError.write(Data("scrm-gateway: adapter error: \(error)\n".utf8))
    exit(78)
} catch let error as CRMSpecError {
    FileHandle.standardError.write(Data("scrm-gateway: CRM adapter error: \(error)\n".utf8))
    exit(78)
} catch let error as RedisURLError {
    FileHandle.standardError.write(Data("scrm-gateway: config error at redis.url: \(error)\n".utf8))
    exit(78)
}
