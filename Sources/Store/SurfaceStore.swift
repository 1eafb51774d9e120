import Foundation
import GatewayCore
import RedisClient

/// The run-time WeChat surfaces of each account: QR scenes, reply rules and the published menu, and
/// the per-scene counts. Every change bumps the account's version (`Keys.surfaceVersion`) in the same
/// function call, so a process that polls the versions reloads exactly what changed.
public struct SurfaceStore: Sendable {
    let redis: RedisPool
    /// Scenes kept per account (WeChat: 100,000 permanent codes per account).
    public static let sceneCap = 100_000

    public init(redis: RedisPool) { self.redis = redis }

    public enum Saved: Sendable, Equatable { case created, replaced, full }

    public func putScene(account: String, _ scene: QRScene) async throws -> Saved {
        let json = String(decoding: try JSONEncoder().encode(scene), as: UTF8.self)
        let r = try await redis.fcall(
            StoreFunctions.library, "qr_scene_put", keys: [Keys.qrScenes(account: account), Keys.surfaceVersion(account: account)],
            args: [scene.scene, json, String(Self.sceneCap)]
        ).int
        return r == 1 ? .created : r == 0 ? .replaced : .full
    }

    public func scene(account: String, _ name: String) async throws -> QRScene? {
        guard let raw = try await redis.send("HGET", Keys.qrScenes(account: account), name).string else { return nil }
        return try? JSONDecoder().decode(QRScene.self, from: Data(raw.utf8))
    }

    public func scenes(account: String) async throws -> [QRScene] {
        Self.scenes(try await redis.send("HVALS", Keys.qrScenes(account: account)))
    }

    static func scenes(_ hashValues: RedisValue) -> [QRScene] {
        hashValues.strings.compactMap { try? JSONDecoder().decode(QRScene.self, from: Data($0.utf8)) }
    }

    public func deleteScene(account: String, _ name: String) async throws -> Bool {
        try await redis.fcall(
            StoreFunctions.library, "qr_scene_delete", keys: [Keys.qrScenes(account: account), Keys.surfaceVersion(account: account)], args: [name]
        ).int == 1
    }

    public struct SceneCounts: Sendable, Equatable {
        public var scans = 0
        public var subscribes = 0
        public var unsubscribes = 0

        public init(scans: Int = 0, subscribes: Int = 0, unsubscribes: Int = 0) {
            self.scans = scans
            self.subscribes = subscribes
            self.unsubscribes = unsubscribes
        }
    }

    /// Scans, subscribes and unsubscribes per scene, including scenes deleted since.
    public func sceneCounts(account: String) async throws -> [String: SceneCounts] {
        var out = [String: SceneCounts]()
        for (field, value) in try await redis.send("HGETALL", Keys.qrSceneStats(account: account)).dictionary {
            guard let sep = field.lastIndex(of: "\u{1F}"), let n = Int(value) else { continue }
            let scene = String(field[..<sep])
            switch field[field.index(after: sep)...] {
            case "scans": out[scene, default: SceneCounts()].scans = n
            case "subscribes": out[scene, default: SceneCounts()].subscribes = n
            case "unsubscribes": out[scene, default: SceneCounts()].unsubscribes = n
            default: break
            }
        }
        return out
    }

    /// The stored reply rules, nil when none were ever saved (the config file's apply).
    public func replyRules(account: String) async throws -> ReplyRules? {
        guard let raw = try await redis.send("GET", Keys.replyRules(account: account)).string else { return nil }
        return try JSONDecoder().decode(ReplyRules.self, from: Data(raw.utf8))
    }

    /// Saves (nil: removes, back to the config file's) and returns the new version.
    @discardableResult
    public func putReplyRules(account: String, _ rules: ReplyRules?) async throws -> Int {
        let json = try rules.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) } ?? ""
        return try await redis.fcall(
            StoreFunctions.library, "surface_doc_put", keys: [Keys.replyRules(account: account), Keys.surfaceVersion(account: account)], args: [json]
        ).int ?? 0
    }

    public func menu(account: String) async throws -> String? { try await redis.send("GET", Keys.menu(account: account)).string }

    public func putMenu(account: String, json: String) async throws {
        _ = try await redis.fcall(
            StoreFunctions.library, "surface_doc_put", keys: [Keys.menu(account: account), Keys.surfaceVersion(account: account)], args: [json])
    }

    /// A cached media id and how long it stays usable (ms), if the same file was uploaded before.
    public func cachedMedia(account: String, kind: String, hash: String) async throws -> (mediaId: String, ttlMs: Int64)? {
        let key = Keys.mediaCache(account: account, kind: kind, hash: hash)
        let r = try await redis.pipelineChecked([["GET", key], ["PTTL", key]])
        guard let id = r[0].string, let ttl = r[1].int, ttl > 0 else { return nil }
        return (id, Int64(ttl))
    }

    public func cacheMedia(account: String, kind: String, hash: String, mediaId: String, ttlMs: Int64) async throws {
        try await redis.send("SET", Keys.mediaCache(account: account, kind: kind, hash: hash), mediaId, "PX", String(ttlMs))
    }

    /// Each account's version (0 = never changed), in one round trip.
    public func versions(accounts: [String]) async throws -> [String: Int] {
        guard !accounts.isEmpty else { return [:] }
        let r = try await redis.pipelineChecked(accounts.map { ["GET", Keys.surfaceVersion(account: $0)] })
        return Dictionary(uniqueKeysWithValues: zip(accounts, r.map { Int($0.string ?? "") ?? 0 }))
    }

    /// What the webhooks need of one account: its scenes and reply rules, read together.
    public func snapshot(account: String) async throws -> (scenes: [QRScene], replies: ReplyRules?, version: Int) {
        let r = try await redis.pipelineChecked([
            ["GET", Keys.surfaceVersion(account: account)], ["HVALS", Keys.qrScenes(account: account)], ["GET", Keys.replyRules(account: account)],
        ])
        let scenes = Self.scenes(r[1])
        let replies = try r[2].string.map { try JSONDecoder().decode(ReplyRules.self, from: Data($0.utf8)) }
        return (scenes, replies, Int(r[0].string ?? "") ?? 0)
    }
}
