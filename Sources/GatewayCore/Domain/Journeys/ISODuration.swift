/// ISO 8601 durations as journeys use them: an optional sign, then weeks, days, and after `T` hours,
/// minutes and seconds (`P3D`, `-P1D`, `PT1H`, `PT10S`, `P1DT12H`, `P2W`). Years and months are
/// refused: their length depends on the calendar, and a reminder "1 month before" should say 30 days.
public enum ISODuration {
    public struct Invalid: Error, Equatable, CustomStringConvertible {
        public let text: String
        public var description: String { "\"\(text)\" is not an ISO 8601 duration such as P3D, -P1D, PT1H or PT10S (no years or months)" }
    }

    /// The duration in milliseconds (negative with a leading `-`).
    public static func milliseconds(_ text: String) throws -> Int64 {
        var chars = Substring(text)
        var sign: Int64 = 1
        if chars.first == "-" {
            sign = -1
            chars = chars.dropFirst()
        } else if chars.first == "+" {
            chars = chars.dropFirst()
        }
        guard chars.first == "P", chars.count > 1 else { throw Invalid(text: text) }
        chars = chars.dropFirst()
        var total: Int64 = 0
        var inTime = false
        var number = ""
        var seen = Set<String>()
        var any = false
        for c in chars {
            if c == "T" {
                guard !inTime, number.isEmpty else { throw Invalid(text: text) }
                inTime = true
                continue
            }
            if c.isASCII, c.isNumber {
                number.append(c)
                guard number.count <= 9 else { throw Invalid(text: text) }
                continue
            }
            let unit: Int64
            switch (c, inTime) {
            case ("W", false): unit = 7 * 86_400_000
            case ("D", false): unit = 86_400_000
            case ("H", true): unit = 3_600_000
            case ("M", true): unit = 60_000
            case ("S", true): unit = 1_000
            default: throw Invalid(text: text)
            }
            guard let n = Int64(number), seen.insert("\(c)\(inTime)").inserted else { throw Invalid(text: text) }
            total += n * unit
            number = ""
            any = true
        }
        guard any, number.isEmpty, !(inTime && chars.last == "T") else { throw Invalid(text: text) }
        return sign * total
    }
}
