import Foundation
import GatewayCore

/// A campaign as stored in `camp:{id}`: its definition, where it is in its life, and how far planning got.
public struct Campaign: Sendable, Equatable {
    public enum State: String, Sendable, CaseIterable {
        case draft, scheduled, running, paused, completed, cancelled, expired

        public var isFinal: Bool { [.completed, .cancelled, .expired].contains(self) }
    }

    public let id: String
    public var state: State
    public let definition: CampaignDefinition
    /// The definition as submitted (JSON text).
    public let definitionJSON: String
    public let createdAt: Int64
    public var updatedAt: Int64
    /// When it may start (the start call, or the definition's startAt) and when it stops sending.
    public var startAt: Int64?
    public var expiresAt: Int64?
    public var startedAt: Int64?
    public var endedAt: Int64?
    /// Size of the audience snapshot taken at start.
    public var audienceSize: Int?
    /// Whether the whole snapshot has been planned (the count is the `planned` counter).
    public var planDone: Bool
    /// Cursor of the next chunk of the snapshot (IndexShards.scanPage's).
    public var cursor: String
    /// On a cluster, the name of the audience snapshot the activation adopted (kept per shard under
    /// it); nil: Keys.campaignAudience (a single Redis, where the snapshot is renamed to it).
    public var snapshot: String?

    init?(hash h: [String: String]) {
        guard let id = h["id"], let state = h["state"].flatMap(State.init(rawValue:)), let json = h["definition"],
            let definition = try? JSONDecoder().decode(CampaignDefinition.self, from: Data(json.utf8)), let created = h["createdAt"].flatMap({ Int64($0) })
        else { return nil }
        self.id = id
        self.state = state
        self.definition = definition
        self.definitionJSON = json
        self.createdAt = created
        updatedAt = h["updatedAt"].flatMap { Int64($0) } ?? created
        startAt = h["startAt"].flatMap { Int64($0) }
        expiresAt = h["expiresAt"].flatMap { Int64($0) }
        startedAt = h["startedAt"].flatMap { Int64($0) }
        endedAt = h["endedAt"].flatMap { Int64($0) }
        audienceSize = h["audienceSize"].flatMap { Int($0) }
        planDone = h["planDone"] == "1"
        cursor = h["cursor"] ?? "0"
        snapshot = h["snapshot"]
    }
}

/// The counters of a campaign (`camp:{id}:stats`): overall, per variant, per channel, per reason.
public struct CampaignStats: Sendable, Equatable {
    /// `clicked` / `opened`: messages clicked (opened) at least once; `clicks` / `opens`: every one
    /// counted (a repeat within a minute, HEAD requests and link scanners are not). `fellBack`: messages
    /// moved to the next channel at send time (per channel: those that left it).
    public static let metrics = [
        "planned", "queued", "sent", "delivered", "bounced", "failed", "skipped", "deferred", "holdout", "open", "fellBack", "clicked", "clicks",
        "opened", "opens",
    ]

    public var totals: [String: Int] = [:]
    public var variants: [String: [String: Int]] = [:]
    public var channels: [String: [String: Int]] = [:]
    public var skipped: [String: Int] = [:]
    public var failed: [String: Int] = [:]
    /// Fallbacks at send time: by the channel moved to, and by the reason the previous one could not be used.
    public var fellBackTo: [String: Int] = [:]
    public var fellBackReasons: [String: Int] = [:]

    public init(hash: [String: String]) {
        for (k, v) in hash {
            let n = Int(v) ?? 0
            if k.hasPrefix("v:"), let (name, metric) = Self.split(k.dropFirst(2)) {
                variants[name, default: [:]][metric] = n
            } else if k.hasPrefix("ch:"), let (name, metric) = Self.split(k.dropFirst(3)) {
                channels[name, default: [:]][metric] = n
            } else if k.hasPrefix("skip:") {
                skipped[String(k.dropFirst(5))] = n
            } else if k.hasPrefix("fellBackTo:") {
                fellBackTo[String(k.dropFirst(11))] = n
            } else if k.hasPrefix("fellBack:") {
                fellBackReasons[String(k.dropFirst(9))] = n
            } else if k.hasPrefix("fail:") {
                failed[String(k.dropFirst(5))] = n
            } else {
                totals[k] = n
            }
        }
    }

    public subscript(_ metric: String) -> Int { totals[metric] ?? 0 }

    /// "name:metric" where the name may itself hold ':' (the metric never does).
    private static func split(_ s: Substring) -> (String, String)? {
        guard let colon = s.lastIndex(of: ":") else { return nil }
        return (String(s[..<colon]), String(s[s.index(after: colon)...]))
    }
}
