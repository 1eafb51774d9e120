import Foundation

/// CPU time a process has used (user + system), read from `/proc/<pid>/stat`; 0 when unknown.
struct ProcessCPU {
    static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    static func ticks(_ pid: Int32) -> Int {
        guard pid > 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 12 ? (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0) : 0
    }

    /// Microseconds of CPU per unit between two readings.
    static func microsPerUnit(from: Int, to: Int, units: Int) -> Double {
        units > 0 ? Double(to - from) * 1e6 / ticksPerSecond / Double(units) : 0
    }
}
