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
    /// The template as text and variables, when it is nothing more (no sections, partials or
    /// comments): rendered by joining them, without Mustache. Most adapter fields and message texts
    /// are such templates, and rendering is a large part of a send's CPU.
    private let pieces: [Piece]?

    enum Piece: Sendable, Equatable {
        case text(String)
        /// The name and its dotted parts (split once, here).
        case variable(String, [String])
    }

    public init(_ source: String, path: String) throws {
        self.source = source
        do {
            template = try MustacheTemplate(string: "{{% CONTENT_TYPE: TEXT}}" + source)
        } catch {
            throw ConfigError(path: path, reason: "not a valid Mustache template: \(error)")
        }
        required = try Self.topLevelVariables(source, path: path)
        pieces = Self.pieces(source)
    }

    /// True when the template has no tags at all.
    public var isLiteral: Bool { !source.contains("{{") }

    public func render(_ context: [String: Any]) throws -> String {
        if let pieces, let text = try Self.join(pieces, context) { return text }
        for name in required where Self.lookup(name, in: context) == nil {
            throw RenderError.missingVariable(name)
        }
        return template.render(context)
    }

    /// The pieces joined with the context's text values; nil when a value is not text (Mustache
    /// formats those). Every variable is required: the first missing one throws.
    static func join(_ pieces: [Piece], _ context: [String: Any]) throws -> String? {
        var out = ""
        for piece in pieces {
            switch piece {
            case .text(let t): out += t
            case .variable(let name, let parts):
                guard let value = lookup(parts, in: context) else { throw RenderError.missingVariable(name) }
                guard let text = value as? String else { return nil }
                out += text
            }
        }
        return out
    }

    /// `source` as text and plain variable tags (`{{x.y}}`, `{{{x}}}`, `{{& x}}`), or nil when it
    /// has anything else.
    static func pieces(_ source: String) -> [Piece]? {
        var pieces = [Piece]()
        var rest = Substring(source)
        while let open = rest.range(of: "{{") {
            if open.lowerBound > rest.startIndex { pieces.append(.text(String(rest[..<open.lowerBound]))) }
            var after = rest[open.upperBound...]
            let triple = after.hasPrefix("{")
            if triple { after = after.dropFirst() }
            guard let close = after.range(of: triple ? "}}}" : "}}") else { return nil }
            var tag = after[..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            if !triple, tag.hasPrefix("&") { tag = tag.dropFirst().trimmingCharacters(in: .whitespaces) }
            let plain = tag.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "_-.".unicodeScalars.contains($0) }
            guard !tag.isEmpty, plain, tag.first != ".", tag.last != ".", !tag.contains("..") else { return nil }
            pieces.append(.variable(tag, tag.split(separator: ".").map(String.init)))
            rest = after[close.upperBound...]
        }
        if !rest.isEmpty { pieces.append(.text(String(rest))) }
        return pieces
    }

    /// The required variables `context` has no value for.
    public func missing(_ context: [String: Any]) -> [String] { required.filter { Self.lookup($0, in: context) == nil } }

    /// The text with holes where variables are missing (a preview shows them; a send refuses, `render`).
    public func renderLeniently(_ context: [String: Any]) -> String { template.render(context) }

    static func lookup(_ dotted: String, in context: [String: Any]) -> Any? {
        if dotted == "." { return context }
        return lookup(dotted.split(separator: ".").map(String.init), in: context)
    }

    static func lookup(_ parts: [String], in context: [String: Any]) -> Any? {
        guard let first = parts.first, var current = context[first] else { return nil }
        for part in parts.dropFirst() {
            guard let dict = current as? [String: Any], let next = dict[part] else { return nil }
            current = next
        }
        // Empty text and empty collections count as missing.
        if let s = current as? String { return s.isEmpty ? nil : s }
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
