/// Tag names: 1 to 64 characters; letters (any script), digits and `- _ : .`. No spaces or the
/// audience-expression operators `& | ! ( )`, and not `score` or a word the expressions read as a
/// predicate (`stage:`, `tier:`, `consent:`, `account:`), which no audience could name.
public enum TagName {
    public static let rule = "a tag name is 1 to 64 characters: letters, digits, - _ : . not starting with a combining mark (not score, stage:, tier:, consent:, account:)"

    public static func isMark(_ s: Unicode.Scalar) -> Bool {
        [.nonspacingMark, .spacingMark, .enclosingMark].contains(s.properties.generalCategory)
    }

    public static func isValid(_ name: String) -> Bool {
        guard (1...64).contains(name.count), name.utf8.count <= 256 else { return false }
        if name == "score" || TagExpression.Field.allCases.contains(where: { name.hasPrefix($0.rawValue + ":") }) { return false }
        // Not starting with a combining mark, which would fuse with whatever precedes the name in an
        // expression (found by the tag-expression fuzzer).
        guard let first = name.unicodeScalars.first, !isMark(first) else { return false }
        return name.unicodeScalars.allSatisfy { s in
            s.properties.isAlphabetic || ("0"..."9").contains(s) || "-_:.".unicodeScalars.contains(s)
        }
    }
}
