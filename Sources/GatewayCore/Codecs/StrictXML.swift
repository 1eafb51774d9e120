/// A small, strict XML reader for platform callbacks.
///
/// It reads elements, attributes, text and CDATA, the five predefined entities and numeric character
/// references. It refuses anything that could expand: any `<!DOCTYPE`, `<!ENTITY` or other declaration,
/// undeclared entity references, processing instructions other than the leading `<?xml ...?>`, invalid
/// UTF-8, mismatched tags, text outside the root and nesting deeper than `maxDepth`. Text is kept byte
/// for byte (FoundationXML on Linux silently drops text around entity references, so we do not use it).
public struct XMLElement: Sendable, Equatable {
    public var name: String
    public var attributes: [String: String]
    public var children: [XMLElement]
    public var text: String

    public func child(_ name: String) -> XMLElement? { children.first { $0.name == name } }
}

public struct XMLParseError: Error, Equatable, CustomStringConvertible {
    public let reason: String
    public let offset: Int
    public var description: String { "malformed XML at byte \(offset): \(reason)" }
    /// True when the document tried to declare a DTD or entity.
    public var isDeclaration: Bool { reason.hasPrefix("declaration") }
}

public enum StrictXML {
    public static let maxDepth = 16

    public static func parse(_ bytes: [UInt8]) throws -> XMLElement {
        var p = Parser(bytes: bytes)
        return try p.document()
    }

    public static func parse(_ string: String) throws -> XMLElement { try parse(Array(string.utf8)) }
}

private struct Parser {
    let bytes: [UInt8]
    var i = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    func fail(_ reason: String) -> XMLParseError { XMLParseError(reason: reason, offset: i) }

    mutating func document() throws -> XMLElement {
        // XML 1.0 allows no C0 control characters but tab, LF and CR, even escaped in CDATA.
        if let bad = bytes.firstIndex(where: { $0 < 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }) {
            i = bad
            throw fail("control character 0x\(String(bytes[bad], radix: 16))")
        }
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }
        skipWhitespace()
        if starts("<?xml") {
            guard let end = find("?>", from: i) else { throw fail("unterminated XML declaration") }
            i = end + 2
        }
        try skipMisc()
        guard peek == UInt8(ascii: "<") else { throw fail("expected a root element") }
        let root = try element(depth: 0)
        try skipMisc()
        guard i == bytes.count else { throw fail("content after the root element") }
        return root
    }

    /// Whitespace and comments; declarations are refused.
    mutating func skipMisc() throws {
        while true {
            skipWhitespace()
            if starts("<!--") {
                try comment()
            } else if starts("<!") {
                throw fail("declaration (DOCTYPE/ENTITY) is not allowed")
            } else if starts("<?") {
                throw fail("processing instruction is not allowed")
            } else {
                return
            }
        }
    }

    mutating func comment() throws {
        guard let end = find("-->", from: i + 4) else { throw fail("unterminated comment") }
        i = end + 3
    }

    mutating func element(depth: Int) throws -> XMLElement {
        guard depth < StrictXML.maxDepth else { throw fail("nesting deeper than \(StrictXML.maxDepth)") }
        i += 1  // <
        let name = try self.name()
        var attributes = [String: String]()
        while true {
            let hadSpace = skipWhitespace()
            guard let c = peek else { throw fail("unterminated start tag <\(name)>") }
            if c == UInt8(ascii: "/") {
                guard byte(at: i + 1) == UInt8(ascii: ">") else { throw fail("expected /> in <\(name)>") }
                i += 2
                return XMLElement(name: name, attributes: attributes, children: [], text: "")
            }
            if c == UInt8(ascii: ">") {
                i += 1
                break
            }
            guard hadSpace else { throw fail("expected whitespace before an attribute in <\(name)>") }
            let attr = try self.name()
            skipWhitespace()
            guard peek == UInt8(ascii: "=") else { throw fail("expected = after attribute \(attr)") }
            i += 1
            skipWhitespace()
            guard let q = peek, q == UInt8(ascii: "\"") || q == UInt8(ascii: "'") else { throw fail("expected a quoted value") }
            i += 1
            guard let end = bytes[i...].firstIndex(of: q) else { throw fail("unterminated attribute value") }
            let raw = Array(bytes[i..<end])
            guard !raw.contains(UInt8(ascii: "<")) else { throw fail("< in attribute value") }
            guard attributes[attr] == nil else { throw fail("duplicate attribute \(attr)") }
            attributes[attr] = try decodeText(raw)
            i = end + 1
        }
        var children = [XMLElement]()
        var text = [UInt8]()
        while true {
            guard let c = peek else { throw fail("unterminated element <\(name)>") }
            if c != UInt8(ascii: "<") {
                let end = bytes[i...].firstIndex(of: UInt8(ascii: "<")) ?? bytes.count
                let raw = Array(bytes[i..<end])
                if raw.contains(UInt8(ascii: "]")), find("]]>", in: raw) != nil { throw fail("]]> in text") }
                text += Array(try decodeText(raw).utf8)
                i = end
            } else if starts("<![CDATA[") {
                guard let end = find("]]>", from: i + 9) else { throw fail("unterminated CDATA") }
                text += bytes[(i + 9)..<end]
                i = end + 3
            } else if starts("<!--") {
                try comment()
            } else if starts("<!") {
                throw fail("declaration (DOCTYPE/ENTITY) is not allowed")
            } else if starts("<?") {
                throw fail("processing instruction is not allowed")
            } else if starts("</") {
                i += 2
                let closing = try self.name()
                skipWhitespace()
                guard closing == name, peek == UInt8(ascii: ">") else { throw fail("</\(closing)> does not close <\(name)>") }
                i += 1
                guard let s = String(validating: text, as: UTF8.self) else { throw fail("invalid UTF-8 in <\(name)>") }
                return XMLElement(name: name, attributes: attributes, children: children, text: children.isEmpty ? s : s.trimmingXMLSpace())
            } else {
                children.append(try element(depth: depth + 1))
            }
        }
    }

    mutating func name() throws -> String {
        let start = i
        while let c = peek, !(c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D || c == UInt8(ascii: ">") || c == UInt8(ascii: "/")
            || c == UInt8(ascii: "=") || c == UInt8(ascii: "<") || c == UInt8(ascii: "&") || c == UInt8(ascii: "\"") || c == UInt8(ascii: "'"))
        {
            i += 1
        }
        guard i > start, let s = String(validating: bytes[start..<i], as: UTF8.self) else { throw fail("expected a name") }
        let first = bytes[start]
        guard !(first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9")) && first != UInt8(ascii: "-") && first != UInt8(ascii: ".") else {
            throw fail("invalid name \(s)")
        }
        return s
    }

    /// Decodes the five predefined entities and numeric references; any other `&` is an error.
    func decodeText(_ raw: [UInt8]) throws -> String {
        guard raw.contains(UInt8(ascii: "&")) else {
            guard let s = String(validating: raw, as: UTF8.self) else { throw fail("invalid UTF-8") }
            return s
        }
        var out = [UInt8]()
        var k = 0
        while k < raw.count {
            if raw[k] != UInt8(ascii: "&") {
                out.append(raw[k])
                k += 1
                continue
            }
            guard let semi = raw[k...].firstIndex(of: UInt8(ascii: ";")), semi - k <= 10 else { throw fail("unterminated entity reference") }
            let ref = String(decoding: raw[(k + 1)..<semi], as: UTF8.self)
            switch ref {
            case "lt": out.append(UInt8(ascii: "<"))
            case "gt": out.append(UInt8(ascii: ">"))
            case "amp": out.append(UInt8(ascii: "&"))
            case "quot": out.append(UInt8(ascii: "\""))
            case "apos": out.append(UInt8(ascii: "'"))
            default:
                guard ref.hasPrefix("#") else { throw fail("undeclared entity &\(ref);") }
                let digits = ref.dropFirst()
                let value = digits.hasPrefix("x") ? UInt32(digits.dropFirst(), radix: 16) : UInt32(digits, radix: 10)
                guard let v = value, v != 0, let scalar = Unicode.Scalar(v) else { throw fail("invalid character reference &\(ref);") }
                out += Array(String(Character(scalar)).utf8)
            }
            k = semi + 1
        }
        guard let s = String(validating: out, as: UTF8.self) else { throw fail("invalid UTF-8") }
        return s
    }

    var peek: UInt8? { i < bytes.count ? bytes[i] : nil }
    func byte(at k: Int) -> UInt8? { k < bytes.count ? bytes[k] : nil }

    @discardableResult
    mutating func skipWhitespace() -> Bool {
        let start = i
        while let c = peek, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { i += 1 }
        return i > start
    }

    func starts(_ s: StaticString) -> Bool {
        let n = s.utf8CodeUnitCount
        guard i + n <= bytes.count else { return false }
        return s.withUTF8Buffer { buf in
            for k in 0..<n where bytes[i + k] != buf[k] { return false }
            return true
        }
    }

    func find(_ s: StaticString, from: Int) -> Int? {
        s.withUTF8Buffer { needle in
            guard needle.count <= bytes.count else { return nil }
            var k = from
            while k + needle.count <= bytes.count {
                if bytes[k] == needle[0] {
                    var match = true
                    for m in 1..<needle.count where bytes[k + m] != needle[m] {
                        match = false
                        break
                    }
                    if match { return k }
                }
                k += 1
            }
            return nil
        }
    }

    func find(_ s: StaticString, in raw: [UInt8]) -> Int? {
        Parser(bytes: raw).find(s, from: 0)
    }
}

extension String {
    /// Mixed content between child elements is only whitespace in platform callbacks; drop it.
    fileprivate func trimmingXMLSpace() -> String {
        allSatisfy { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" } ? "" : self
    }
}
