import Foundation
import FuzzTargets

// scrm-fuzz: the fuzz targets of FuzzTargets.
// Built by scripts/fuzz with `-sanitize=fuzzer,address -DFUZZING`: libFuzzer drives the target named
// by SCRM_FUZZ_TARGET (libFuzzer's own flags and corpus directories as arguments).
// Built normally: `scrm-fuzz <target> <file or directory>...` replays inputs (a crash found by the
// fuzzer, or a corpus) through the target.

#if FUZZING
nonisolated(unsafe) var selected: (@Sendable ([UInt8]) -> Void)?

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// SwiftPM links an executable's entry as `<module>_main`; libFuzzer's driver takes over from it.
@_cdecl("scrm_fuzz_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    let name = ProcessInfo.processInfo.environment["SCRM_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTargets.all[name] else {
        FileHandle.standardError.write(Data("set SCRM_FUZZ_TARGET to one of: \(FuzzTargets.names.joined(separator: ", "))\n".utf8))
        return 2
    }
    selected = target
    var c = argc
    var v = argv
    return LLVMFuzzerRunDriver(&c, &v) { data, size in
        selected?(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
        return 0
    }
}
#else
@main
struct Replay {
    static func main() throws {
        let args = CommandLine.arguments.dropFirst()
        guard let name = args.first, let target = FuzzTargets.all[name] else {
            print("usage: scrm-fuzz <target> <file or directory>...   targets: \(FuzzTargets.names.joined(separator: ", "))")
            exit(2)
        }
        var count = 0
        for path in args.dropFirst() {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { continue }
            let files = isDir.boolValue ? try FileManager.default.contentsOfDirectory(atPath: path).sorted().map { path + "/" + $0 } : [path]
            for f in files {
                target([UInt8](try Data(contentsOf: URL(fileURLWithPath: f))))
                count += 1
            }
        }
        print("\(name): \(count) inputs replayed, no crash")
    }
}
#endif
