/// Tag names: 1 to 64 characters; letters (any script), digits and `- _ : .`. No spaces or the
/// audience-expression operators `& | ! ( )`.
public enum TagName {
    public static let rule = "a tag name is 1 to 64 characters: letters, digits, - _ : ."

    public static func isValid(_ name: String) -> Bool {
        guard (1...64).contains(name.count), name.utf8.count <= 256 else { return false }
        return name.unicodeScalars.allSatisfy { s in
            s.properties.isAlphabetic || ("0"..."9").contains(s) || "-_:.".unicodeScalars.contains(s)
        }
    }
}
