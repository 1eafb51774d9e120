import GatewayCrypto
import Foundation

/// A configuration problem, with the key path it concerns.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let reason: String
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "config error at \(path.isEmpty ? "<root>" : path): \(reason)" }
}

/// Reads gateway YAML: `${VAR}` and `${VAR:-default}` in string values come from the environment;
/// unknown keys, wrong types and invalid values fail with the key path.
public struct ConfigLoader {
    public var environment: [String: String]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) { self.environment = environment }

    public func load(path: String) throws -> GatewayConfig {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigError(path: "", reason: "cannot read \(path)")
        }
        return try load(yaml: text)
    }

    public func load(yaml: String) throws -> GatewayConfig {
        let tree: Any?
        tree = try SafeYAML.load(yaml)
        let root = try ConfigNode(value: tree ?? [String: Any](), path: "", env: environment).map()
        var config = GatewayConfig()
        try root.only([
            "server", "redis", "admin", "privacy", "webhooks", "customers", "sessions", "streams", "outbound", "contactRules", "scoring", "crm",
            "leads", "douyin", "accounts",
        ])

        if let s = try root.optionalMap("server") {
            try s.only(["host", "port", "maxBodyBytes", "requestTimeoutSeconds", "trustedProxies", "adminHost", "adminPort"])
            config.server.adminHost = try s.string("adminHost", default: config.server.adminHost)
            let adminPort = try s.int("adminPort", default: 0, range: 0...65535)
            config.server.adminPort = adminPort == 0 ? nil : adminPort
            config.server.trustedProxies = try s.scalarList("trustedProxies") ?? []
            config.server.host = try s.string("host", default: config.server.host)
            config.server.port = try s.int("port", default: config.server.port, range: 0...65535)
            config.server.maxBodyBytes = try s.int("maxBodyBytes", default: config.server.maxBodyBytes, range: 1024...10_485_760)
            config.server.requestTimeoutSeconds = try s.int("requestTimeoutSeconds", default: 10, range: 1...600)
        }
        if let r = try root.optionalMap("redis") {
            try r.only(["url", "cluster", "readFromReplicas", "waitForReplicas", "replicaWaitMs", "streamPartitions", "connections", "connectTimeoutMs", "commandTimeoutMs"])
            config.redis.url = try r.string("url", default: config.redis.url)
            guard config.redis.url.hasPrefix("redis://") || config.redis.url.hasPrefix("unix://") else {
                throw ConfigError(path: "redis.url", reason: "must be redis://[user:password@]host:port[/db] or unix:///path/redis.sock")
            }
            // A list, or one comma-separated string (as SCRM_REDIS_CLUSTER gives it).
            config.redis.cluster = (try r.scalarList("cluster") ?? []).flatMap { $0.split(separator: ",") }
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            for seed in config.redis.cluster where !seed.hasPrefix("redis://") || seed.dropFirst("redis://".count).contains("/") {
                throw ConfigError(path: "redis.cluster", reason: "each seed must be redis://[user:password@]host:port (a cluster has no databases or unix sockets)")
            }
            config.redis.readFromReplicas = try r.bool("readFromReplicas", default: false)
            config.redis.waitForReplicas = try r.int("waitForReplicas", default: config.redis.waitForReplicas, range: 0...5)
            config.redis.replicaWaitMs = try r.int("replicaWaitMs", default: config.redis.replicaWaitMs, range: 1...10_000)
            config.redis.streamPartitions = try r.int(
                "streamPartitions", default: config.redis.streamPartitions, range: StreamPartitions.range.lowerBound...StreamPartitions.range.upperBound)
            config.redis.connections = try r.int("connections", default: config.redis.connections, range: 1...64)
            config.redis.connectTimeoutMs = try r.int("connectTimeoutMs", default: config.redis.connectTimeoutMs, range: 10...60_000)
            config.redis.commandTimeoutMs = try r.int("commandTimeoutMs", default: config.redis.commandTimeoutMs, range: 10...60_000)
        }
        if let p = try root.optionalMap("privacy") {
            try p.only(["suppressionKey"])
            let key = try p.string("suppressionKey", default: "")
            if !key.isEmpty && key.utf8.count < 16 {
                throw ConfigError(path: "privacy.suppressionKey", reason: "must be at least 16 characters")
            }
            config.privacy.suppressionKey = key.isEmpty ? nil : key
        }
        if let a = try root.optionalMap("admin") {
            try a.only([
                "token", "maxBulkIds", "auditRetentionDays", "sessionIdleMinutes", "sessionMaxHours", "loginMaxFailures", "loginLockoutMinutes",
                "loginAttemptsPerMinute",
            ])
            let token = try a.string("token", default: "")
            if !token.isEmpty && token.utf8.count < 16 {
                throw ConfigError(path: "admin.token", reason: "must be at least 16 characters (or empty to close the admin API)")
            }
            config.admin.token = token.isEmpty ? nil : token
            config.admin.maxBulkIds = try a.int("maxBulkIds", default: config.admin.maxBulkIds, range: 1...1_000_000)
            config.admin.auditRetentionDays = try a.int("auditRetentionDays", default: config.admin.auditRetentionDays, range: 1...3650)
            config.admin.sessionIdleMinutes = try a.int("sessionIdleMinutes", default: config.admin.sessionIdleMinutes, range: 1...10_080)
            config.admin.sessionMaxHours = try a.int("sessionMaxHours", default: config.admin.sessionMaxHours, range: 1...720)
            config.admin.loginMaxFailures = try a.int("loginMaxFailures", default: config.admin.loginMaxFailures, range: 1...100)
            config.admin.loginLockoutMinutes = try a.int("loginLockoutMinutes", default: config.admin.loginLockoutMinutes, range: 1...1440)
            config.admin.loginAttemptsPerMinute = try a.int("loginAttemptsPerMinute", default: config.admin.loginAttemptsPerMinute, range: 1...10_000)
        }
        if let w = try root.optionalMap("webhooks") {
            try w.only(["timestampWindowSeconds", "dedupTTLSeconds", "nonceTTLSeconds", "receiptMaxBodyBytes", "ingestInSteps"])
            config.webhooks.ingestInSteps = try w.bool("ingestInSteps", default: false)
            config.webhooks.receiptMaxBodyBytes = try w.int("receiptMaxBodyBytes", default: config.webhooks.receiptMaxBodyBytes, range: 1024...16_777_216)
            config.webhooks.timestampWindowSeconds = try w.int("timestampWindowSeconds", default: 300, range: 1...86_400)
            config.webhooks.dedupTTLSeconds = try w.int("dedupTTLSeconds", default: 600, range: 60...604_800)
            config.webhooks.nonceTTLSeconds = try w.int("nonceTTLSeconds", default: 2 * config.webhooks.timestampWindowSeconds + 300, range: 1...604_800)
            guard config.webhooks.nonceTTLSeconds >= 2 * config.webhooks.timestampWindowSeconds else {
                throw ConfigError(path: "webhooks.nonceTTLSeconds", reason: "must cover the whole timestamp window (>= 2 x timestampWindowSeconds)")
            }
        }
        if let c = try root.optionalMap("customers") {
            try c.only(["timelineCap", "attributes", "importMaxBytes"])
            config.customers.timelineCap = try c.int("timelineCap", default: 500, range: 1...100_000)
            config.customers.importMaxBytes = try c.int("importMaxBytes", default: 1 << 30, range: 1024...(1 << 40))
            if let a = try c.optionalMap("attributes") { config.customers.attributes = try attributes(a) }
        }
        if let s = try root.optionalMap("sessions") {
            try s.only(["messageCap", "windowHours"])
            config.sessions.messageCap = try s.int("messageCap", default: 50, range: 1...1000)
            config.sessions.windowHours = try s.int("windowHours", default: 48, range: 1...720)
        }
        if let s = try root.optionalMap("streams") {
            try s.only(["inboundMaxLen"])
            config.streams.inboundMaxLen = try s.int("inboundMaxLen", default: 1_000_000, range: 1000...100_000_000)
        }
        if let o = try root.optionalMap("outbound") {
            try o.only([
                "adaptersDir", "channels", "adapters", "publicURL", "sandboxMaxLen", "linkSecret", "linkSecretVersion", "retiredLinkSecrets", "concurrency", "retryBaseMs", "retryCapMs",
                "maxAgeHours", "claimIdleSeconds", "journeyLeaseSeconds", "circuitFailures", "circuitOpenMs", "circuitMaxOpenMs", "wecomApiBase",
            ])
            config.outbound.adaptersDir = try o.string("adaptersDir", default: config.outbound.adaptersDir)
            if let c = try o.optionalMap("channels") {
                try c.only(["wechat", "sms", "email", "douyin"])
                for key in c.keys { config.outbound.channels[key] = try c.string(key) }
            }
            if let extra = try o.optionalList("adapters") { config.outbound.extraAdapters = try extra.map { try $0.scalar() } }
            config.outbound.publicURL = try baseURL(o, "publicURL", default: config.outbound.publicURL)
            config.outbound.sandboxMaxLen = try o.int("sandboxMaxLen", default: 10_000, range: 100...10_000_000)
            config.outbound.wecomApiBase = try baseURL(o, "wecomApiBase", default: config.outbound.wecomApiBase)
            let secret = try o.string("linkSecret", default: "")
            if !secret.isEmpty && secret.utf8.count < 16 {
                throw ConfigError(path: "outbound.linkSecret", reason: "must be at least 16 characters (or empty: no unsubscribe links)")
            }
            config.outbound.linkSecret = secret.isEmpty ? nil : secret
            config.outbound.linkSecretVersion = try o.int("linkSecretVersion", default: 1, range: 1...63)
            if let retired = try o.optionalMap("retiredLinkSecrets") {
                for key in retired.keys {
                    guard let v = Int(key), (1...63).contains(v), v != config.outbound.linkSecretVersion else {
                        throw ConfigError(path: "outbound.retiredLinkSecrets.\(key)", reason: "must be a version 1...63 other than linkSecretVersion")
                    }
                    let old = try retired.string(key)
                    if old.isEmpty { continue }  // an unset ${VAR:-}
                    guard old.utf8.count >= 16 else { throw ConfigError(path: "outbound.retiredLinkSecrets.\(key)", reason: "must be at least 16 characters") }
                    config.outbound.retiredLinkSecrets[v] = old
                }
            }
            config.outbound.concurrency = try o.int("concurrency", default: 32, range: 0...1024)
            config.outbound.retryBaseMs = Int64(try o.int("retryBaseMs", default: 2_000, range: 10...3_600_000))
            config.outbound.retryCapMs = Int64(try o.int("retryCapMs", default: 600_000, range: 10...86_400_000))
            config.outbound.maxAgeHours = try o.int("maxAgeHours", default: 24, range: 1...720)
            config.outbound.claimIdleSeconds = try o.int("claimIdleSeconds", default: 60, range: 1...3600)
            config.outbound.journeyLeaseSeconds = try o.int("journeyLeaseSeconds", default: 30, range: 1...3600)
            config.outbound.circuitFailures = try o.int("circuitFailures", default: 5, range: 1...10_000)
            config.outbound.circuitOpenMs = Int64(try o.int("circuitOpenMs", default: 2_000, range: 10...3_600_000))
            config.outbound.circuitMaxOpenMs = Int64(try o.int("circuitMaxOpenMs", default: 30_000, range: 10...86_400_000))
            if config.outbound.circuitMaxOpenMs < config.outbound.circuitOpenMs {
                throw ConfigError(path: "outbound.circuitMaxOpenMs", reason: "must be at least circuitOpenMs")
            }
        }
        if let c = try root.optionalMap("contactRules") { config.contactRules = try contactRules(c) }
        config.customers.attributes.defaultTimeZone = config.contactRules.timezone
        if let sc = try root.optionalMap("scoring") {
            try sc.only(["rules"])
            let file = try sc.string("rules", default: "")
            config.scoringRules = file.isEmpty ? nil : file
        }
        if let c = try root.optionalMap("crm") {
            try c.only(["adapters", "specsDir", "recentInteractions", "concurrency", "maxAttempts", "retryBaseMs", "retryCapMs", "leaseSeconds", "webhookWindowSeconds"])
            // A list, or one comma-separated string (so `${SCRM_CRM_ADAPTERS:-}` can name them).
            let names = (try c.scalarList("adapters") ?? []).flatMap { $0.split(separator: ",").map(String.init) }
            config.crm.adapters = names.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            config.crm.specsDir = try c.string("specsDir", default: config.crm.specsDir)
            config.crm.recentInteractions = try c.int("recentInteractions", default: 20, range: 0...500)
            config.crm.concurrency = try c.int("concurrency", default: 2, range: 0...64)
            config.crm.maxAttempts = try c.int("maxAttempts", default: 8, range: 1...100)
            config.crm.retryBaseMs = Int64(try c.int("retryBaseMs", default: 5_000, range: 10...3_600_000))
            config.crm.retryCapMs = Int64(try c.int("retryCapMs", default: 600_000, range: 10...86_400_000))
            config.crm.leaseSeconds = try c.int("leaseSeconds", default: 120, range: 5...3600)
            config.crm.webhookWindowSeconds = try c.int("webhookWindowSeconds", default: 300, range: 10...86_400)
        }
        if let l = try root.optionalMap("leads") {
            try l.only(["sources", "windowSeconds", "maxBodyBytes"])
            config.leads.windowSeconds = try l.int("windowSeconds", default: 300, range: 10...86_400)
            config.leads.maxBodyBytes = try l.int("maxBodyBytes", default: 256 * 1024, range: 1024...(16 << 20))
            for (i, node) in (try l.optionalList("sources") ?? []).enumerated() {
                let m = try node.map()
                try m.only(["id", "secret"])
                let id = try shortId(m)
                let secret = try m.string("secret")
                // An empty secret (an unset ${VAR:-}) turns the source off rather than accepting unsigned leads.
                guard secret.isEmpty || secret.utf8.count >= 16 else { throw ConfigError(path: m.path + ".secret", reason: "must be at least 16 characters") }
                guard !config.leads.sources.contains(where: { $0.id == id }) else { throw ConfigError(path: "leads.sources[\(i)].id", reason: "duplicate source \(id)") }
                if !secret.isEmpty { config.leads.sources.append(.init(id: id, secret: secret)) }
            }
        }
        config.accounts = try (try root.optionalList("accounts") ?? []).map(account)
        var seen = Set<String>()
        for (i, a) in config.accounts.enumerated() where !seen.insert(a.id).inserted {
            throw ConfigError(path: "accounts[\(i)].id", reason: "duplicate account id \(a.id)")
        }
        if let d = try root.optionalMap("douyin") {
            try d.only(["accounts", "windowSeconds"])
            config.douyin.windowSeconds = try d.int("windowSeconds", default: 600, range: 30...86_400)
            for (i, node) in (try d.optionalList("accounts") ?? []).enumerated() {
                let m = try node.map()
                try m.only(["id", "clientKey", "clientSecret", "openId", "refreshToken"])
                let id = try shortId(m)
                // Sessions and dedup keys are per account id, whatever the platform.
                guard seen.insert(id).inserted else { throw ConfigError(path: "douyin.accounts[\(i)].id", reason: "duplicate account id \(id)") }
                let key = try m.string("clientKey"), secret = try m.string("clientSecret")
                // An unset secret turns the account off rather than taking unsigned events.
                guard !key.isEmpty, !secret.isEmpty else { continue }
                config.douyin.accounts.append(
                    .init(id: id, clientKey: key, clientSecret: secret, openId: try m.string("openId", default: ""), refreshToken: try m.string("refreshToken", default: "")))
            }
        }
        return config
    }

    /// `name: type` or `name: {type: ..., indexed: true|false}`; type is string, number, boolean,
    /// datetime, timezone or enum:[a, b, ...].
    private func attributes(_ m: ConfigMap) throws -> CustomerAttributes {
        var list = [CustomerAttributes.Attribute]()
        for name in m.keys {
            let path = m.child(name)
            guard CustomerAttributes.isValidName(name) else {
                throw ConfigError(path: path, reason: "attribute names are 1 to 40 lowercase letters, digits or _, starting with a letter")
            }
            let node = try m.node(name)
            var typeText: String
            var indexed: Bool?
            if node.value is [String: Any] {
                let a = try node.map()
                try a.only(["type", "indexed"])
                typeText = try a.string("type")
                if a.has("indexed") { indexed = try a.bool("indexed", default: false) }
            } else {
                typeText = try node.scalar()
            }
            typeText = typeText.trimmingCharacters(in: .whitespaces)
            let kind: CustomerAttributes.Kind
            switch typeText {
            case "string": kind = .string
            case "number": kind = .number
            case "boolean": kind = .boolean
            case "datetime": kind = .datetime
            case "timezone": kind = .timezone
            default:
                guard typeText.hasPrefix("enum:[") && typeText.hasSuffix("]") else {
                    throw ConfigError(path: path, reason: "type must be string, number, boolean, datetime, timezone or enum:[a, b]")
                }
                let values = typeText.dropFirst(6).dropLast().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                guard !values.isEmpty, values.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 64 }), Set(values).count == values.count else {
                    throw ConfigError(path: path, reason: "enum needs distinct values of 1 to 64 bytes, e.g. enum:[bronze, silver, gold]")
                }
                kind = .enumeration(values)
            }
            list.append(CustomerAttributes.Attribute(name: name, kind: kind, indexed: indexed))
        }
        return CustomerAttributes(list)
    }

    private func contactRules(_ c: ConfigMap) throws -> ContactRules {
        try c.only(["timezone", "quietHours", "caps", "requireOptIn"])
        var rules = ContactRules()
        if let o = try c.optionalMap("requireOptIn") {
            try o.only(["sms", "email"])
            for channel in o.keys where try o.bool(channel, default: false) { rules.requireOptIn.insert(channel) }
        }
        rules.timezone = try timezone(c, "timezone") ?? rules.timezone
        if let q = try c.optionalMap("quietHours") {
            try q.only(["start", "end"])
            guard let start = ContactRules.QuietHours.minute(try q.string("start")), let end = ContactRules.QuietHours.minute(try q.string("end")) else {
                throw ConfigError(path: q.path, reason: "start and end must be HH:MM (24-hour), e.g. 21:00 and 08:00")
            }
            rules.quietHours = ContactRules.QuietHours(startMinute: start, endMinute: end)
        }
        for node in try c.optionalList("caps") ?? [] {
            let m = try node.map()
            try m.only(["channel", "max", "perHours"])
            let channel = try m.string("channel", default: "all")
            guard ["all", "wechat", "sms", "email"].contains(channel) else {
                throw ConfigError(path: m.path + ".channel", reason: "must be all, wechat, sms or email")
            }
            rules.caps.append(
                ContactRules.Cap(
                    channel: channel == "all" ? nil : channel, max: try m.int("max", default: 1, range: 1...1000),
                    windowHours: try m.int("perHours", default: 24, range: 1...24 * 31)))
        }
        return rules
    }

    /// An http(s) base URL, without a trailing slash.
    private func baseURL(_ m: ConfigMap, _ key: String, default value: String) throws -> String {
        let url = try m.string(key, default: value)
        guard url.hasPrefix("https://") || url.hasPrefix("http://") else { throw ConfigError(path: m.child(key), reason: "must be an http(s) URL") }
        return url.hasSuffix("/") ? String(url.dropLast()) : url
    }

    private func timezone(_ m: ConfigMap, _ key: String) throws -> String? {
        guard let name = try m.optionalString(key), !name.isEmpty else { return nil }
        guard TimeZone(identifier: name) != nil else { throw ConfigError(path: m.child(key), reason: "unknown time zone \(name) (use an IANA name such as Asia/Shanghai)") }
        return name
    }

    /// An entry's `id` (an account, a lead source): 1 to 32 letters, digits, - or _.
    private func shortId(_ m: ConfigMap) throws -> String {
        let id = try m.string("id")
        guard (1...32).contains(id.utf8.count), id.utf8.allSatisfy({ IdentityInput.isTokenByte($0) }) else {
            throw ConfigError(path: m.path + ".id", reason: "must be 1 to 32 letters, digits, - or _")
        }
        return id
    }

    private func account(_ node: ConfigNode) throws -> Account {
        let m = try node.map()
        try m.only(["id", "platform", "appId", "corpId", "token", "appSecret", "encodingAESKey", "mode", "scenes", "autoReply", "timezone", "massSend"])
        let id = try shortId(m)
        guard let platform = Account.Platform(rawValue: try m.string("platform", default: "wechat")) else {
            throw ConfigError(path: m.path + ".platform", reason: "must be wechat or wecom")
        }
        let appKey = platform == .wecom ? "corpId" : "appId"
        let appId = try m.string(appKey)
        guard !appId.isEmpty else { throw ConfigError(path: m.path + "." + appKey, reason: "must not be empty") }
        let token = try m.string("token")
        guard (3...64).contains(token.utf8.count), token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw ConfigError(path: m.path + ".token", reason: "must be 3 to 64 printable ASCII characters")
        }
        guard let mode = Account.Mode(rawValue: try m.string("mode", default: platform == .wecom ? "safe" : "plain")) else {
            throw ConfigError(path: m.path + ".mode", reason: "must be plain, compat or safe")
        }
        if platform == .wecom && mode != .safe {
            throw ConfigError(path: m.path + ".mode", reason: "WeCom callbacks are always encrypted: mode must be safe")
        }
        let key = try m.string("encodingAESKey", default: "")
        if mode != .plain || !key.isEmpty {
            do { _ = try WeChatCipher(encodingAESKey: key, appId: appId) } catch {
                throw ConfigError(path: m.path + ".encodingAESKey", reason: "must be the 43-character EncodingAESKey (needed for \(mode.rawValue) mode)")
            }
        }
        var scenes = [String: String]()
        if let s = try m.optionalMap("scenes") {
            for key in s.keys {
                let tag = try s.string(key)
                guard TagName.isValid(tag) else { throw ConfigError(path: s.path + "." + key, reason: TagName.rule) }
                scenes[key] = tag
            }
        }
        var rules = [AutoReplyRule]()
        for r in try m.optionalList("autoReply") ?? [] {
            let rm = try r.map()
            try rm.only(["match", "keyword", "caseSensitive", "reply"])
            guard let match = AutoReplyRule.Match(rawValue: try rm.string("match", default: "prefix")) else {
                throw ConfigError(path: rm.path + ".match", reason: "must be prefix, exact or contains")
            }
            let keyword = try rm.string("keyword")
            let reply = try rm.string("reply")
            guard !keyword.isEmpty else { throw ConfigError(path: rm.path + ".keyword", reason: "must not be empty") }
            guard !reply.isEmpty, reply.utf8.count <= 2048 else { throw ConfigError(path: rm.path + ".reply", reason: "must be 1 to 2048 bytes") }
            rules.append(AutoReplyRule(match: match, keyword: keyword, caseSensitive: try rm.bool("caseSensitive", default: false), reply: reply))
        }
        var account = Account(
            id: id, platform: platform, appId: appId, token: token, encodingAESKey: key.isEmpty ? nil : key, mode: mode, scenes: scenes,
            autoReplies: rules, appSecret: try m.optionalString("appSecret").flatMap { $0.isEmpty ? nil : $0 })
        account.timezone = try timezone(m, "timezone")
        if let q = try m.optionalMap("massSend") {
            try q.only(["period", "limit"])
            guard let period = MassSendQuota.Period(rawValue: try q.string("period", default: "month")) else {
                throw ConfigError(path: q.child("period"), reason: "must be day or month")
            }
            account.massSend = MassSendQuota(period: period, limit: try q.int("limit", default: 4, range: 0...10_000))
        }
        return account
    }
}
