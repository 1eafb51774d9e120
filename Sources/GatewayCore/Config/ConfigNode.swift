import Foundation

/// A YAML value with its key path, for error messages. Shared by the gateway config and the adapter
/// specs. With `env` set, string values expand `${VAR}` / `${VAR:-default}`; with nil they are taken
/// as written (adapter request templates, where `$` means nothing).
public struct ConfigNode {
    public let value: Any
    public let path: String
    public let env: [String: String]?

    public init(value: Any, path: String, env: [String: String]?) {
        self.value = value
        self.path = path
        self.env = env
    }

    public var isNull: Bool { value is NSNull }

    public func map() throws -> ConfigMap {
        guard let d = value as? [String: Any] else { throw ConfigError(path: path, reason: "must be a mapping") }
        return ConfigMap(dict: d, path: path, env: env)
    }

    /// A scalar as text (numbers and booleans as YAML wrote them).
    public func scalar() throws -> String {
        let raw: String
        switch value {
        case let s as String: raw = s
        case let i as Int: raw = String(i)
        case let b as Bool: raw = String(b)
        case let d as Double: raw = String(d)
        default: throw ConfigError(path: path, reason: "must be a string")
        }
        guard let env else { return raw }
        return try SecretFiles.read(try Interpolation.expand(raw, env: env, path: path), path: path)
    }
}

public struct ConfigMap {
    public let dict: [String: Any]
    public let path: String
    public let env: [String: String]?

    public var keys: [String] { dict.keys.sorted() }

    public func child(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    public func has(_ key: String) -> Bool {
        guard let v = dict[key] else { return false }
        return !(v is NSNull)
    }

    public func node(_ key: String) throws -> ConfigNode {
        guard let v = dict[key], !(v is NSNull) else { throw ConfigError(path: child(key), reason: "is required") }
        return ConfigNode(value: v, path: child(key), env: env)
    }

    public func only(_ allowed: Set<String>) throws {
        for key in dict.keys.sorted() where !allowed.contains(key) {
            throw ConfigError(path: child(key), reason: "unknown key (expected one of: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    public func optionalMap(_ key: String) throws -> ConfigMap? {
        guard has(key) else { return nil }
        return try node(key).map()
    }

    public func optionalList(_ key: String) throws -> [ConfigNode]? {
        guard has(key) else { return nil }
        guard let list = dict[key] as? [Any] else { throw ConfigError(path: child(key), reason: "must be a list") }
        return list.enumerated().map { ConfigNode(value: $0.element, path: "\(child(key))[\($0.offset)]", env: env) }
    }

    /// A scalar, or a list of scalars (a lone scalar reads as a list of one).
    public func scalarList(_ key: String) throws -> [String]? {
        guard has(key) else { return nil }
        if dict[key] is [Any], let items = try optionalList(key) { return try items.map { try $0.scalar() } }
        return [try node(key).scalar()]
    }

    public func string(_ key: String, default fallback: String? = nil) throws -> String {
        guard has(key) else {
            if let fallback { return fallback }
            throw ConfigError(path: child(key), reason: "is required")
        }
        return try node(key).scalar()
    }

    public func optionalString(_ key: String) throws -> String? {
        has(key) ? try string(key) : nil
    }

    public func int(_ key: String, default fallback: Int, range: ClosedRange<Int>) throws -> Int {
        guard has(key) else { return fallback }
        let s = try string(key)
        guard let i = Int(s) else { throw ConfigError(path: child(key), reason: "must be an integer, got \"\(s)\"") }
        guard range.contains(i) else { throw ConfigError(path: child(key), reason: "must be in \(range.lowerBound)...\(range.upperBound)") }
        return i
    }

    public func double(_ key: String, range: ClosedRange<Double>) throws -> Double {
        let s = try string(key)
        guard let d = Double(s), d.isFinite else { throw ConfigError(path: child(key), reason: "must be a number, got \"\(s)\"") }
        guard range.contains(d) else { throw ConfigError(path: child(key), reason: "must be in \(range.lowerBound)...\(range.upperBound)") }
        return d
    }

    public func bool(_ key: String, default fallback: Bool) throws -> Bool {
        guard has(key) else { return fallback }
        switch try string(key).lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: throw ConfigError(path: child(key), reason: "must be true or false")
        }
    }

    /// A string that must be one of a closed set of raw values.
    public func choice<T: RawRepresentable>(_ key: String, default fallback: T? = nil) throws -> T where T.RawValue == String, T: CaseIterable {
        if !has(key), let fallback { return fallback }
        let s = try string(key)
        guard let v = T(rawValue: s) else {
            throw ConfigError(path: child(key), reason: "must be one of: \(T.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(s)\"")
        }
        return v
    }
}

/// `${VAR}` and `${VAR:-default}` expansion.
public enum Interpolation {
    public static func expand(_ s: String, env: [String: String], path: String) throws -> String {
        guard s.contains("${") else { return s }
        var out = ""
        var rest = Substring(s)
        while let start = rest.range(of: "${") {
            out += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                throw ConfigError(path: path, reason: "unterminated ${ in \"\(s)\"")
            }
            let expr = rest[start.upperBound..<end]
            let name: Substring
            let fallback: Substring?
            if let sep = expr.range(of: ":-") {
                name = expr[..<sep.lowerBound]
                fallback = expr[sep.upperBound...]
            } else {
                name = expr
                fallback = nil
            }
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                throw ConfigError(path: path, reason: "bad variable name in ${\(expr)}")
            }
            if let v = env[String(name)], !(v.isEmpty && fallback != nil) {
                out += v
            } else if let fallback {
                out += fallback
            } else {
                throw ConfigError(path: path, reason: "environment variable \(name) is not set")
            }
            rest = rest[rest.index(after: end)...]
        }
        return out + rest
    }
}
