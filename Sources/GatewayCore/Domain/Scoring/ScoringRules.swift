import Foundation

/// Lead scoring (`config/scoring.yaml`): points per interaction, daily caps per rule, decay with a
/// half-life, stage thresholds and behaviour tags. Pure: the scoring worker applies the result in Redis.
public struct ScoringRules: Sendable, Equatable {
    public struct Rule: Sendable, Equatable {
        public var id: String
        /// The interaction type (`event.subscribe`, `event.CLICK`, `message.text`, ...).
        public var on: String
        public var condition: Condition?
        public var points: Int
        /// At most this many scorings of this rule per customer per day (Beijing day); nil = no cap.
        public var maxPerDay: Int?
        /// Behaviour tags added when the rule matches.
        public var tags: [String]
        /// A match makes the customer a qualified lead at once (synced to the CRM), whatever the score.
        public var qualify: Bool

        public init(id: String, on: String, condition: Condition? = nil, points: Int, maxPerDay: Int? = nil, tags: [String] = [], qualify: Bool = false) {
            self.id = id
            self.on = on
            self.condition = condition
            self.points = points
            self.maxPerDay = maxPerDay
            self.tags = tags
            self.qualify = qualify
        }
    }

    /// What else must hold, read from the interaction's payload.
    public enum Condition: Sendable, Equatable {
        /// The QR scene (`qrscene_X` on subscribe, `X` on SCAN).
        case scene(String)
        /// The menu key (`EventKey` of CLICK).
        case key(String)
        /// The text contains this word (case-insensitive).
        case keyword(String)
        /// The URL (`EventKey` of VIEW) starts with this.
        case urlPrefix(String)
        /// An API event's `data.<key>` equals this (e.g. form: pricing).
        case data(key: String, value: String)
        /// An API event's `data.<key>` is a number at least this (e.g. minutes watched).
        case atLeast(key: String, value: Double)
    }

    public struct Stage: Sendable, Equatable {
        public var name: String
        public var minScore: Int

        public init(name: String, minScore: Int) {
            self.name = name
            self.minScore = minScore
        }
    }

    /// A value tier: the first whose conditions all hold is the customer's (`tier:<name>` in audiences).
    public struct Tier: Sendable, Equatable {
        public var name: String
        public var minScore: Double?
        /// The stage is one of these (empty = any).
        public var stages: [String]
        /// The customer has all of these tags.
        public var tags: [String]
        /// `profile.<key>` equals the value, for each.
        public var profile: [String: String]

        public init(name: String, minScore: Double? = nil, stages: [String] = [], tags: [String] = [], profile: [String: String] = [:]) {
            self.name = name
            self.minScore = minScore
            self.stages = stages
            self.tags = tags
            self.profile = profile
        }
    }

    public var rules: [Rule] = []
    /// In order; recomputed whenever the customer is scored.
    public var tiers: [Tier] = []
    /// Ascending thresholds; below the first, the stage is `new`.
    public var stages: [Stage] = []
    /// Scores halve after this many days without points; 0 = no decay. Applied in Redis, where the
    /// score is read (decayedScore and the scores index in Store/Lua/customer_base.lua).
    public var halfLifeDays: Double = 0
    /// Reaching this stage (or one sales set above the thresholds, such as SQL) makes a customer a
    /// qualified lead, synced to the CRM; nil = only `qualify` rules qualify.
    public var qualifyStage: String?

    /// The rank (1-based) of `qualifyStage` among the stages; 0 = none.
    public var qualifyRank: Int { qualifyStage.flatMap { q in stages.firstIndex { $0.name == q } }.map { $0 + 1 } ?? 0 }

    public init(rules: [Rule] = [], stages: [Stage] = [], halfLifeDays: Double = 0) {
        self.rules = rules
        self.stages = stages
        self.halfLifeDays = halfLifeDays
    }

    /// The rules an interaction matches, in file order.
    public func matches(type: String, payload: [String: String]) -> [Rule] {
        rules.filter { r in
            guard r.on == type else { return false }
            guard let c = r.condition else { return true }
            let eventKey = payload["EventKey"] ?? ""
            switch c {
            case .scene(let s):
                return eventKey == s || eventKey == "qrscene_" + s
            case .key(let k):
                return eventKey == k
            case .keyword(let w):
                return (payload["Content"] ?? "").range(of: w, options: [.caseInsensitive]) != nil
            case .urlPrefix(let p):
                return (payload["url"] ?? eventKey).hasPrefix(p)
            case .data(let k, let v):
                return payload[k] == v
            case .atLeast(let k, let v):
                return (payload[k].flatMap(Double.init) ?? -Double.infinity) >= v
            }
        }
    }

    // MARK: loading

    public static func load(yaml: String, path: String = "scoring.yaml") throws -> ScoringRules {
        let tree: Any?
        tree = try SafeYAML.load(yaml, path: path)
        let root = try ConfigNode(value: tree ?? [String: Any](), path: "", env: nil).map()
        try root.only(["halfLifeDays", "stages", "qualifyAt", "tiers", "rules"])
        var r = ScoringRules()
        if root.has("halfLifeDays") { r.halfLifeDays = try root.double("halfLifeDays", range: 0...3650) }
        for node in try root.optionalList("stages") ?? [] {
            let m = try node.map()
            try m.only(["name", "minScore"])
            let name = try m.string("name")
            guard !name.isEmpty, name.utf8.allSatisfy(IdentityInput.isTokenByte), name != "new" else {
                throw ConfigError(path: m.child("name"), reason: "must be letters, digits, - or _ (and not \"new\", the stage below all)")
            }
            let min = try m.int("minScore", default: 0, range: 1...1_000_000)
            if let last = r.stages.last, min <= last.minScore {
                throw ConfigError(path: m.child("minScore"), reason: "stages must rise: \(min) is not above \(last.name)'s \(last.minScore)")
            }
            guard !r.stages.contains(where: { $0.name == name }) else { throw ConfigError(path: m.child("name"), reason: "\(name) appears twice") }
            r.stages.append(Stage(name: name, minScore: min))
        }
        if root.has("qualifyAt") {
            let q = try root.string("qualifyAt")
            guard q.isEmpty || r.stages.contains(where: { $0.name == q }) else {
                throw ConfigError(path: "qualifyAt", reason: "names no stage (stages: \(r.stages.map(\.name).joined(separator: ", ")))")
            }
            r.qualifyStage = q.isEmpty ? nil : q
        } else if r.stages.contains(where: { $0.name == "MQL" }) {
            r.qualifyStage = "MQL"
        }
        for node in try root.optionalList("tiers") ?? [] {
            let m = try node.map()
            try m.only(["name", "minScore", "stages", "tags", "profile"])
            let name = try m.string("name")
            guard !name.isEmpty, name.count <= 32, name.utf8.allSatisfy(IdentityInput.isTokenByte) else {
                throw ConfigError(path: m.child("name"), reason: "must be letters, digits, - or _")
            }
            guard !r.tiers.contains(where: { $0.name == name }) else { throw ConfigError(path: m.child("name"), reason: "\(name) appears twice") }
            var tier = Tier(name: name)
            if m.has("minScore") { tier.minScore = try m.double("minScore", range: -1e9...1e9) }
            tier.stages = try m.scalarList("stages") ?? []
            tier.tags = try m.scalarList("tags") ?? []
            for (i, t) in tier.tags.enumerated() where !TagName.isValid(t) { throw ConfigError(path: m.child("tags") + "[\(i)]", reason: TagName.rule) }
            if let p = try m.optionalMap("profile") { for k in p.keys { tier.profile[k] = try p.string(k) } }
            r.tiers.append(tier)
        }
        for node in try root.optionalList("rules") ?? [] {
            let m = try node.map()
            try m.only(["id", "on", "when", "points", "maxPerDay", "tags", "qualify"])
            let id = try m.string("id")
            guard !id.isEmpty, id.utf8.allSatisfy(IdentityInput.isTokenByte) else { throw ConfigError(path: m.child("id"), reason: "must be letters, digits, - or _") }
            guard !r.rules.contains(where: { $0.id == id }) else { throw ConfigError(path: m.child("id"), reason: "\(id) appears twice") }
            let on = try m.string("on")
            guard on.split(separator: ".").count >= 2 else {
                throw ConfigError(path: m.child("on"), reason: "must be an interaction type such as event.subscribe, event.CLICK or message.text")
            }
            var condition: Condition?
            if let w = try m.optionalMap("when") {
                try w.only(["scene", "key", "keyword", "urlPrefix", "data", "atLeast"])
                guard w.keys.count == 1, let k = w.keys.first else {
                    throw ConfigError(path: w.path, reason: "give exactly one of scene, key, keyword, urlPrefix, data, atLeast")
                }
                if k == "data" || k == "atLeast" {
                    guard let d = try w.optionalMap(k) else { throw ConfigError(path: w.child(k), reason: "must be a mapping") }
                    guard d.keys.count == 1, let field = d.keys.first else { throw ConfigError(path: d.path, reason: "give one field: value") }
                    if k == "data" {
                        condition = .data(key: field, value: try d.string(field))
                    } else {
                        condition = .atLeast(key: field, value: try d.double(field, range: -1e12...1e12))
                    }
                } else {
                    let v = try w.string(k)
                    guard !v.isEmpty else { throw ConfigError(path: w.child(k), reason: "must not be empty") }
                    condition = k == "scene" ? .scene(v) : k == "key" ? .key(v) : k == "keyword" ? .keyword(v) : .urlPrefix(v)
                }
            }
            let tags = try m.scalarList("tags") ?? []
            for (i, t) in tags.enumerated() where !TagName.isValid(t) {
                throw ConfigError(path: m.child("tags") + "[\(i)]", reason: TagName.rule)
            }
            r.rules.append(
                Rule(
                    id: id, on: on, condition: condition, points: try m.int("points", default: 0, range: -1000...1000),
                    maxPerDay: m.has("maxPerDay") ? try m.int("maxPerDay", default: 1, range: 1...10_000) : nil, tags: tags,
                    qualify: try m.bool("qualify", default: false)))
        }
        return r
    }
}
