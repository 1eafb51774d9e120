import GatewayCore

/// A request body written as a YAML tree whose strings are Mustache templates. The tree is rendered
/// into a `JSONValue` and only then encoded (JSON or form), so no variable can break the encoding.
///
/// Beside plain strings, numbers, booleans, lists and mappings, a mapping with one `$` key is special:
/// - `{$value: vars.data}`: the variable as it is (an object, list or number), not as text;
/// - `{$json: vars}`: the variable encoded as JSON text (Alibaba's `TemplateParam`);
/// - `{$entries: vars, each: {value: "{{value}}"}}`: one member per entry of an object variable,
///   rendered from `each` with `key` and `value` in scope (WeChat's template `data`);
/// - `{$if: html, then: {...}}`: the `then` node only when the variable is set and not empty.
///
/// A mapping key ending in `?` (`"url?": "{{link}}"`) is left out when it renders empty.
indirect enum BodyTemplate: Sendable {
    case text(TextTemplate)
    case literal(JSONValue)
    case list([BodyTemplate])
    case object([Member])
    case value(String)
    case json(String)
    case entries(String, each: BodyTemplate)
    case when(String, then: BodyTemplate)

    struct Member: Sendable {
        let key: String
        let omitEmpty: Bool
        let value: BodyTemplate
    }

    static func parse(_ node: ConfigNode) throws -> BodyTemplate {
        switch node.value {
        case let s as String: return .text(try TextTemplate(s, path: node.path))
        case let b as Bool: return .literal(.bool(b))
        case let i as Int: return .literal(.int(Int64(i)))
        case let d as Double: return .literal(.double(d))
        case let list as [Any]:
            return .list(try list.enumerated().map { try parse(ConfigNode(value: $0.element, path: "\(node.path)[\($0.offset)]", env: nil)) })
        case is [String: Any]:
            let map = try node.map()
            if let special = map.keys.first(where: { $0.hasPrefix("$") }) { return try parseSpecial(special, map) }
            return .object(try map.keys.map { key in
                let omit = key.hasSuffix("?")
                return Member(key: omit ? String(key.dropLast()) : key, omitEmpty: omit, value: try parse(try map.node(key)))
            })
        default:
            if node.isNull { return .literal(.null) }
            throw ConfigError(path: node.path, reason: "must be a string, number, boolean, list or mapping")
        }
    }

    private static func parseSpecial(_ key: String, _ map: ConfigMap) throws -> BodyTemplate {
        let variable = try map.string(key)
        guard !variable.isEmpty, !variable.contains("{") else {
            throw ConfigError(path: map.child(key), reason: "names a variable (like vars.data), without braces")
        }
        switch key {
        case "$value":
            try map.only(["$value"])
            return .value(variable)
        case "$json":
            try map.only(["$json"])
            return .json(variable)
        case "$entries":
            try map.only(["$entries", "each"])
            return .entries(variable, each: try parse(try map.node("each")))
        case "$if":
            try map.only(["$if", "then"])
            return .when(variable, then: try parse(try map.node("then")))
        default:
            throw ConfigError(path: map.child(key), reason: "unknown directive (expected $value, $json, $entries or $if)")
        }
    }

    /// Renders the tree; nil means "absent" (an `$if` whose variable is empty).
    func render(_ context: [String: Any]) throws -> JSONValue? {
        switch self {
        case .text(let t): return .string(try t.render(context))
        case .literal(let v): return v
        case .list(let items): return .array(try items.compactMap { try $0.render(context) })
        case .object(let members):
            var out = [String: JSONValue]()
            for m in members {
                if m.omitEmpty, case .text(let t) = m.value {
                    // Optional member: absent when its variables are missing or it renders empty.
                    guard let s = try? t.render(context), !s.isEmpty else { continue }
                    out[m.key] = .string(s)
                    continue
                }
                guard let v = try m.value.render(context) else { continue }
                if m.omitEmpty, v == .string("") || v == .null || v == .object([:]) || v == .array([]) { continue }
                out[m.key] = v
            }
            return .object(out)
        case .value(let name): return try Self.variable(name, context)
        case .json(let name): return .string(try Self.variable(name, context).text)
        case .entries(let name, let each):
            guard case .object(let entries) = try Self.variable(name, context) else {
                throw RenderError.invalidValue("\(name) must be an object")
            }
            var out = [String: JSONValue]()
            for (key, value) in entries {
                var scope = context
                scope["key"] = key
                scope["value"] = value.foundationValue ?? ""
                out[key] = try each.render(scope)
            }
            return .object(out)
        case .when(let name, let then):
            return TextTemplate.lookup(name, in: context) == nil ? nil : try then.render(context)
        }
    }

    private static func variable(_ name: String, _ context: [String: Any]) throws -> JSONValue {
        guard let v = TextTemplate.lookup(name, in: context) else { throw RenderError.missingVariable(name) }
        return JSONValue(foundation: v)
    }
}

extension JSONValue {
    /// From the Foundation values a render context holds.
    init(foundation v: Any) {
        switch v {
        case let s as String: self = .string(s)
        case let b as Bool: self = .bool(b)
        case let i as Int: self = .int(Int64(i))
        case let d as Double: self = .double(d)
        case let a as [Any]: self = .array(a.map { JSONValue(foundation: $0) })
        case let o as [String: Any]: self = .object(o.mapValues { JSONValue(foundation: $0) })
        default: self = .string(String(describing: v))
        }
    }
}
