import GatewayCore
import HTTPAPI
import Hummingbird
import Ingress

/// `POST /api/v1/scoring/reload`: reads the scoring rules file again in this process (others pick the
/// edit up within seconds by themselves). A file that does not load answers 400 with its key and
/// keeps the rules in force.
struct ScoringRoutes {
    let source: ScoringRulesSource?

    /// The rules in force, as `GET /scoring/rules` shows them (read-only; edited in the rules file).
    struct RulesView: Encodable {
        let file: String?
        /// Why the last edit of the file was not taken (the previous rules stay in force).
        let lastError: String?
        let halfLifeDays: Double
        let qualifyAt: String?
        let rules: [Rule]
        let stages: [Stage]
        let tiers: [Tier]

        struct Rule: Encodable {
            let id: String
            let on: String
            /// The rule's `when`, as the rules file writes it: `scene: expo2026`, `data: { form: pricing }`, ...
            let condition: String?
            let points: Int
            let maxPerDay: Int?
            let tags: [String]
            let qualify: Bool
        }

        struct Stage: Encodable {
            let name: String
            let minScore: Int
        }

        struct Tier: Encodable {
            let name: String
            let minScore: Double?
            let stages: [String]
            let tags: [String]
            let profile: [String: String]
        }

        init(_ r: ScoringRules, source: ScoringRulesSource?) {
            file = source?.path
            lastError = source?.lastError
            halfLifeDays = r.halfLifeDays
            qualifyAt = r.qualifyStage
            rules = r.rules.map { rule in
                let condition: String? =
                    switch rule.condition {
                    case .scene(let s): "scene: \(s)"
                    case .key(let k): "key: \(k)"
                    case .keyword(let w): "keyword: \(w)"
                    case .urlPrefix(let u): "urlPrefix: \(u)"
                    case .data(let k, let v): "data: { \(k): \(v) }"
                    case .atLeast(let k, let v): "atLeast: { \(k): \(v == v.rounded() ? String(Int64(v)) : String(v)) }"
                    case nil: nil
                    }
                return Rule(id: rule.id, on: rule.on, condition: condition, points: rule.points, maxPerDay: rule.maxPerDay, tags: rule.tags, qualify: rule.qualify)
            }
            stages = r.stages.map { Stage(name: $0.name, minScore: $0.minScore) }
            tiers = r.tiers.map { Tier(name: $0.name, minScore: $0.minScore, stages: $0.stages, tags: $0.tags, profile: $0.profile) }
        }
    }

    func register<Context: RequestContext>(on group: DeclaredRoutes<Context>) {
        group.get("/scoring/rules", .operationsRead) { _, _ in
            guard let source else { throw APIError(.notFound, "scoring_disabled", "scoring.rules is not set in the config") }
            return try JSONResponse.encoded(RulesView(source.current, source: source))
        }
        group.post("/scoring/reload", .scoringWrite) { _, _ in
            guard let source else { throw APIError(.conflict, "scoring_disabled", "scoring.rules is not set in the config") }
            let rules: ScoringRules
            do { rules = try source.reload() } catch let e as ConfigError {
                throw APIError.badRequest("\(e.path): \(e.reason) (the previous rules stay in force)", code: "invalid_rules")
            }
            return try JSONResponse.encoded(
                Reloaded(file: source.path, rules: rules.rules.count, stages: rules.stages.count, tiers: rules.tiers.count, qualifyAt: rules.qualifyStage))
        }
    }

    /// `POST /scoring/reload`: what is in force now (`qualifyAt` null when only qualify rules qualify).
    struct Reloaded: Encodable {
        let file: String
        let rules: Int
        let stages: Int
        let tiers: Int
        @Null var qualifyAt: String?
    }
}
