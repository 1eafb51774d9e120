import Foundation

/// `[#########---------------------]`: 30 characters for 0...100 percent.
func progressBar(_ percent: Double, width: Int = 30) -> String {
    let filled = max(0, min(width, Int(percent / 100 * Double(width))))
    return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "]"
}

/// Prints `poll`'s line every `every` seconds (rewritten in place on a terminal) until it says done.
func follow(every: Double, _ poll: () async throws -> (line: String, done: Bool)) async throws {
    let tty = isatty(1) == 1
    while true {
        let (line, done) = try await poll()
        if tty { FileHandle.standardOutput.write(Data(("\r\u{1B}[2K" + line).utf8)) } else { print(line) }
        if done {
            if tty { print("") }
            return
        }
        try await Task.sleep(for: .milliseconds(Int(every * 1000)))
    }
}
