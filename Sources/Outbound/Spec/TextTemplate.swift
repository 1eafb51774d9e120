import Foundation
import GatewayCore
import Mustache

/// A Mustache template rendered as plain text (no HTML escaping: the request encoder escapes for
/// JSON, forms or URLs). Variables used outside sections are required: rendering fails with the first
/// missing one, so a message is skipped with a reason instead of going out with a hole in it.
public struct TextTemplate: Sendable {
    public let source: String
    public let required: [String]
    private let template: MustacheTemplate

    public init(_ source: String, path: String) throws {
        self.source = source
        do {
            template = try MustacheTemplate(string: "{{% CONTENT_TYPE: TEXT}}" + source)
        } catch {
            throw ConfigError(path: path, reason: "not a valid Mustache template: \(error)")
        }
        required = try Self.topLevelVariables(source, path: path)
    }

    /// True when the template has no tags at all.
    public var isLiteral: Bool { !source.contains("{{") }

    public func render(_ context: [String: Any]) throws -> String {
        for name in required where Self.lookup(name, in: context) == nil {
            throw RenderError.missingVariable(name)
        }
        return template.render(context)
    }

    /// The required variables `context` has no value for.
    public func missing(_ context: [String: Any]) -> [String] { required.filter { Self.lookup($0, in: context) == nil } }

    /// The text with holes where variables are missing (a preview shows them; a send refuses, `render`).
    public func renderLeniently(_ context: [String: Any]) -> String { template.render(context) }

    static func lookup(_ dotted: String, in context: [String: Any]) -> Any? {
        if dotted == "." { return context }
        var current: Any? = context
        for part in dotted.split(separator: ".") {
            guard let dict = current as? [String: Any], let next = dict[String(part)] else { return nil }
            current = next
        }
        // Empty text and empty collections count as missing.
        if let s = current as? String, s.isEmpty { return nil }
        if let d = current as? [String: Any], d.isEmpty { return nil }
        if let a = current as? [Any], a.isEmpty { return nil }
        return current
    }

    /// Names of `{{x}}`, `{{{x}}}` and `{{&x}}` tags outside any section, in order.
    private static func topLevelVariables(_ source: String, path: String) throws -> [String] {
        var names = [String]()
        var depth = 0
        var rest = Substring(source)
        while let open = rest.range(of: "{{") {
            let afterOpen = rest[open.upperBound...]
            guard let close = afterOpen.range(of: "}}") else { break }
            var tag = afterOpen[..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            rest = afterOpen[close.upperBound...]
            if tag.hasPrefix("{") {
                tag.removeFirst()
                if rest.hasPrefix("}") { rest = rest.dropFirst() }
            }
            guard let sigil = tag.first else { continue }
            switch sigil {
            case "#", "^": depth += 1
            case "/": depth -= 1
            case "!", "%", ">", "<", "$": continue
            case "=": throw ConfigError(path: path, reason: "custom Mustache delimiters are not supported")
            default:
                let name = (sigil == "&" ? String(tag.dropFirst()) : tag).trimmingCharacters(in: .whitespaces)
                if depth == 0, !name.isEmpty, !names.contains(name) { names.append(name) }
            }
        }
        return names
    }
}

/// Why a message could not be rendered into a request.
public enum RenderError: Error, Equatable, CustomStringConvertible {
    case missingVariable(String)
    case invalidValue(String)

    public var description: String {
        switch self {
        case .missingVariable(let name): "missing variable \(name)"
        case .invalidValue(let why): why
        }
    }
}
