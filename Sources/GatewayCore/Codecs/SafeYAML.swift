import Foundation
import Yams

/// YAML as the gateway reads it (config, scoring rules, adapter specs): plain documents only. Anchors
/// and aliases (alias bombs), keys that are not plain text (Yams traps on them, found by the
/// config-interpolation fuzzer), and trees deeper than 64 or larger than 200,000 nodes are refused
/// with a `ConfigError` before Yams builds anything.
public enum SafeYAML {
    public static func load(_ yaml: String, path: String = "") throws -> Any? {
        let parser: Parser
        let node: Node?
        do {
            parser = try Parser(yaml: yaml)
            node = try parser.singleRoot()
        } catch { throw ConfigError(path: path, reason: "not valid YAML: \(error)") }
        guard let node else { return nil }
        var budget = 200_000
        // Nodes hold their anchors weakly; the parser keeps them alive while the tree is checked.
        try withExtendedLifetime(parser) { try check(node, depth: 0, budget: &budget, path: path) }
        do { return try Yams.load(yaml: yaml) } catch { throw ConfigError(path: path, reason: "not valid YAML: \(error)") }
    }

    static func check(_ node: Node, depth: Int, budget: inout Int, path: String) throws {
        budget -= 1
        guard budget > 0 else { throw ConfigError(path: path, reason: "YAML too large") }
        guard depth < 64 else { throw ConfigError(path: path, reason: "YAML nested too deeply") }
        if node.anchor != nil { throw ConfigError(path: path, reason: "YAML anchors and aliases are not accepted") }
        switch node {
        case .scalar: return
        case .alias: throw ConfigError(path: path, reason: "YAML anchors and aliases are not accepted")
        case .sequence(let s): for n in s { try check(n, depth: depth + 1, budget: &budget, path: path) }
        case .mapping(let m):
            for (k, v) in m {
                guard case .scalar(let key) = k else { throw ConfigError(path: path, reason: "mapping keys must be plain text") }
                try check(v, depth: depth + 1, budget: &budget, path: path.isEmpty ? key.string : path + "." + key.string)
            }
        }
    }
}

extension SafeYAML {
    /// A YAML document as JSON (what an API body carries): times as ISO 8601 text, keys as text.
    public static func json(_ yaml: String, path: String = "") throws -> JSONValue {
        guard let value = try load(yaml, path: path) else { return .null }
        return jsonValue(value)
    }

    static func jsonValue(_ v: Any) -> JSONValue {
        switch v {
        case let b as Bool: return .bool(b)
        case let i as Int: return .int(Int64(i))
        case let d as Double: return .double(d)
        case let s as String: return .string(s)
        case let d as Date: return .string(ISO8601DateFormatter().string(from: d))
        case let m as [String: Any]: return .object(m.mapValues(jsonValue))
        case let m as [AnyHashable: Any]: return .object(Dictionary(m.map { ("\($0.key)", jsonValue($0.value)) }, uniquingKeysWith: { a, _ in a }))
        case let a as [Any]: return .array(a.map(jsonValue))
        default: return .null
        }
    }
}

extension SafeYAML {
    /// JSON written as block YAML, keys sorted (what an editor shows); nil if Yams cannot write it.
    public static func dump(_ value: JSONValue) -> String? {
        try? Yams.dump(object: value.foundationValue, width: 120, allowUnicode: true, sortKeys: true)
    }
}
