import Foundation
import GatewayCore
import RedisClient

/// A journey as stored (`Keys.journey`) with its current definition.
public struct Journey: Sendable, Equatable {
    public enum State: String, Sendable, Codable { case draft, active, paused, archived }

    public let id: String
    public let name: String
    public let state: State
    /// The current version: new enrolments take it.
    public let version: Int
    public let definition: JourneyDefinition
    public let createdAt: Int64
    public let updatedAt: Int64
    public let activatedAt: Int64?
}

/// Journeys in Redis (the `journey_*` functions in `Lua/journeys.lua`): create, edit as a new version,
/// move through draft, active, paused and archived, each change one atomic step.
public struct JourneyStore: Sendable {
    let redis: RedisPool

    /// Where an audience snapshot is (`AudienceStore.snapshot`: per shard on a cluster).
    let shards: IndexShards

    public init(redis: RedisPool) {
        self.redis = redis
        shards = IndexShards(redis: redis, attributes: nil)
    }

    static func json(_ d: JourneyDefinition) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(d), as: UTF8.self)
    }

    /// On a cluster the list of journeys (`Keys.journeys`) is in another slot: the journey is listed
    /// after it is created.
    public func create(id: String, definition: JourneyDefinition, now: Int64) async throws {
        let cluster = redis.isCluster
        let created = try await redis.fcall(
            StoreFunctions.library, "journey_create", keys: [Keys.journey(id), Keys.journeyVersion(id, 1)] + (cluster ? [] : [Keys.journeys]),
            args: [id, definition.name, try Self.json(definition), String(now)])
        if cluster, created.int == 1 { _ = try await redis.send("ZADD", Keys.journeys, String(now), id) }
    }

    public enum Edit: Sendable, Equatable {
        case saved(version: Int)
        /// Someone saved another version first: edit that one.
        case conflict(current: Int)
        case archived
        case missing
    }

    /// Saves `definition` as the version after `base` (the one the edit started from).
    public func edit(id: String, base: Int, definition: JourneyDefinition, now: Int64) async throws -> Edit {
        let r = try await redis.fcall(
            StoreFunctions.library, "journey_edit", keys: [Keys.journey(id), Keys.journeyVersion(id, base + 1)],
            args: [String(base), definition.name, try Self.json(definition), String(now)]
        ).strings
        switch r.first {
        case "ok": return .saved(version: Int(r[1]) ?? base + 1)
        case "conflict": return .conflict(current: Int(r[1]) ?? 0)
        case "illegal": return .archived
        default: return .missing
        }
    }

    public func get(_ id: String) async throws -> Journey? {
        guard ULID.isValid(id) else { return nil }
        let h = try await redis.send("HGETALL", Keys.journey(id)).dictionary
        guard let version = h["version"].flatMap({ Int($0) }) else { return nil }
        guard let text = try await redis.send("GET", Keys.journeyVersion(id, version)).string else { return nil }
        return Self.journey(h, definition: text)
    }

    /// Every journey's id, oldest first.
    public func ids() async throws -> [String] { try await redis.send("ZRANGE", Keys.journeys, "0", "-1").strings }

    public func name(_ id: String) async throws -> String? { try await redis.send("HGET", Keys.journey(id), "name").string }

    /// Members of the audience snapshot the runners have not enrolled yet (over its shards).
    public func audienceToEnrol(_ id: String) async throws -> Int {
        try await shards.totalCards(redis, [(base: "journey", name: "{\(id)}:audience")]).first ?? 0
    }

    /// Up to `count` members of the audience snapshot still to enrol, at random (on a cluster from the
    /// first shards that hold any).
    public func audienceSample(_ id: String, count: Int) async throws -> [String] {
        var sample = [String]()
        for shard in try await shards.holding(redis, { $0.key(single: Keys.journeyAudience(id)) }) where sample.count < count {
            sample += try await redis.send("SRANDMEMBER", shard.key(single: Keys.journeyAudience(id)), String(count - sample.count)).strings
        }
        return sample
    }

    /// Members enrolled from the audience snapshot, taken out of it (each from its shard).
    public func enrolledFromAudience(_ id: String, _ customers: [String]) async throws {
        guard !customers.isEmpty else { return }
        _ = try await redis.pipelineChecked(shards.group(customers).map { ["SREM", $0.shard.key(single: Keys.journeyAudience(id))] + $0.ids })
    }

    /// The ids of the active journeys, sorted.
    public func activeIds() async throws -> [String] { try await redis.send("SMEMBERS", Keys.activeJourneys).strings.sorted() }

    /// Makes `Keys.journeyWatch` (the tags and stages active journeys enrol on) `watch`: built aside
    /// (a key of `builder`'s own) and renamed over the old one, so it is never empty in between.
    public func setWatch(_ watch: Set<String>, builder: String) async throws {
        if watch.isEmpty {
            _ = try await redis.send("DEL", Keys.journeyWatch)
        } else {
            // Tagged with the watch key's whole name: in its slot on a cluster, so RENAME may replace it.
            let aside = "{\(Keys.journeyWatch)}:" + builder
            _ = try await redis.pipelineChecked([["DEL", aside], ["SADD", aside] + watch.sorted(), ["RENAME", aside, Keys.journeyWatch]])
        }
    }

    /// The audience snapshot's size when the journey was activated, for its report.
    public func recordAudience(_ id: String, size: Int) async throws {
        _ = try await redis.send("HSET", Keys.journeyStats(id), "audience", String(size))
    }

    /// Drops what is left of the audience snapshot (an archived journey enrols nobody).
    public func dropAudience(_ id: String) async throws { _ = try await shards.sendEach(redis) { ["DEL", $0.key(single: Keys.journeyAudience(id))] } }

    /// Version `n`'s definition, for customers enrolled on it.
    public func definition(_ id: String, version n: Int) async throws -> JourneyDefinition? {
        guard let text = try await redis.send("GET", Keys.journeyVersion(id, n)).string else { return nil }
        return try? JSONDecoder().decode(JourneyDefinition.self, from: Data(text.utf8))
    }

    /// Newest first, a page at a time (`next` is where the following page starts).
    public func list(limit: Int, before: PageCursor? = nil) async throws -> (journeys: [Journey], next: PageCursor?) {
        let page = try await redis.newestFirst(Keys.journeys, limit: limit, before: before)
        return (try await journeys(page.ids), page.next)
    }

    func journeys(_ ids: [String]) async throws -> [Journey] {
        guard !ids.isEmpty else { return [] }
        let hashes = try await redis.pipelineChecked(ids.map { ["HGETALL", Keys.journey($0)] }).map(\.dictionary)
        // A journey whose hash has no version (never written whole) is left out.
        let found = zip(ids, hashes).compactMap { id, h in h["version"].flatMap { Int($0) }.map { (h, Keys.journeyVersion(id, $0)) } }
        guard !found.isEmpty else { return [] }
        // One GET each, pipelined (per node on a cluster, where the journeys' keys are in different slots).
        let texts = try await redis.pipelineChecked(found.map { ["GET", $0.1] }).map { $0.string ?? "" }
        return zip(found, texts).compactMap { Self.journey($0.0, definition: $1) }
    }

    static func journey(_ h: [String: String], definition text: String) -> Journey? {
        guard let id = h["id"], let state = h["state"].flatMap(Journey.State.init(rawValue:)), let version = h["version"].flatMap({ Int($0) }),
            let created = h["createdAt"].flatMap({ Int64($0) }),
            let definition = try? JSONDecoder().decode(JourneyDefinition.self, from: Data(text.utf8))
        else { return nil }
        return Journey(
            id: id, name: h["name"] ?? definition.name, state: state, version: version, definition: definition, createdAt: created,
            updatedAt: h["updatedAt"].flatMap { Int64($0) } ?? created, activatedAt: h["activatedAt"].flatMap { Int64($0) })
    }

    public enum Action: String, Sendable, CaseIterable { case activate, pause, resume, archive }

    public enum Transition: Sendable, Equatable {
        case moved(to: Journey.State)
        case illegal(from: Journey.State)
        case missing
    }

    /// On a cluster the active set (`Keys.activeJourneys`) is in another slot: after the move it is made
    /// to agree with the state read again (two racing moves each read before they write).
    public func transition(_ id: String, _ action: Action, now: Int64) async throws -> Transition {
        let cluster = redis.isCluster
        let r = try await redis.fcall(
            StoreFunctions.library, "journey_transition", keys: [Keys.journey(id)] + (cluster ? [] : [Keys.activeJourneys]),
            args: [action.rawValue, String(now), id]
        ).strings
        if cluster, r.first == "ok" {
            let state = try await redis.send("HGET", Keys.journey(id), "state").string
            _ = try await redis.send(state == "active" ? "SADD" : "SREM", Keys.activeJourneys, id)
        }
        switch r.first {
        case "ok": return .moved(to: Journey.State(rawValue: r[1]) ?? .draft)
        case "illegal": return .illegal(from: Journey.State(rawValue: r[1]) ?? .draft)
        default: return .missing
        }
    }
}
