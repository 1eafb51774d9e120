import Foundation
import NIOConcurrencyHelpers

/// The scoring rules file, reloadable without a restart: `reload()` (the admin API) or
/// `reloadIfChanged()` (the scoring worker checks the file's modification time every few seconds, so
/// every process on the host picks up an edit). A file that does not load keeps the rules in force.
public final class ScoringRulesSource: Sendable {
    public let path: String
    private struct State {
        var rules: ScoringRules
        var modified: Date?
        var lastError: String?
    }
    private let state: NIOLockedValueBox<State>

    public init(path: String) throws {
        self.path = path
        let (rules, modified) = try Self.read(path)
        state = NIOLockedValueBox(State(rules: rules, modified: modified))
    }

    public var current: ScoringRules { state.withLockedValue { $0.rules } }
    /// Why the last reload failed, if it did (the old rules stay in force).
    public var lastError: String? { state.withLockedValue { $0.lastError } }

    /// Reads the file again; throws `ConfigError` (and keeps the old rules) when it does not load.
    @discardableResult
    public func reload() throws -> ScoringRules {
        do {
            let (rules, modified) = try Self.read(path)
            state.withLockedValue { $0 = State(rules: rules, modified: modified) }
            return rules
        } catch {
            state.withLockedValue { $0.lastError = "\(error)" }
            throw error
        }
    }

    /// Reloads when the file changed since it was read; true when new rules are in force.
    public func reloadIfChanged() -> Bool {
        let modified = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
        guard let modified, state.withLockedValue({ $0.modified != modified }) else { return false }
        do {
            try reload()
            return true
        } catch {
            state.withLockedValue { $0.modified = modified }  // report once per edit, not every poll
            return false
        }
    }

    static func read(_ path: String) throws -> (ScoringRules, Date?) {
        let modified = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ConfigError(path: "scoring.rules", reason: "cannot read \(path)") }
        return (try ScoringRules.load(yaml: text, path: path), modified)
    }
}
