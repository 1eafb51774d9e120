import GatewayCore
import Hummingbird
import Ingress

/// `POST /api/v1/scoring/reload`: reads the scoring rules file again in this process (others pick the
/// edit up within seconds by themselves). A file that does not load answers 400 with its key and
/// keeps the rules in force.
struct ScoringRoutes {
    let source: ScoringRulesSource?

    func register<Context: RequestContext>(on group: DeclaredRoutes<Context>) {
        group.post("/scoring/reload", .scoringWrite) { _, _ in
            guard let source else { throw APIError(.conflict, "scoring_disabled", "scoring.rules is not set in the config") }
            let rules: ScoringRules
            do { rules = try source.reload() } catch let e as ConfigError {
                throw APIError.badRequest("\(e.path): \(e.reason) (the previous rules stay in force)", code: "invalid_rules")
            }
            return JSONResponse.ok(
                JSONText.object([
                    ("file", JSONText.quote(source.path)), ("rules", String(rules.rules.count)), ("stages", String(rules.stages.count)),
                    ("tiers", String(rules.tiers.count)), ("qualifyAt", rules.qualifyStage.map(JSONText.quote) ?? "null"),
                ]))
        }
    }
}
