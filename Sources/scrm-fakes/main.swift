import FakeProviders
import Foundation
import Hummingbird

// scrm-fakes: the loopback fake providers as a process, for benchmarks and manual runs.
// usage: scrm-fakes [port]   (prints "listening on PORT", serves until killed)
let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 0 : 0
let router = Router()
TransportRoutes.add(to: router)
let server = try await FakeServer.start(router, port: port)
print("listening on \(server.port)")
FileHandle.standardOutput.synchronizeFile()
while true { try await Task.sleep(for: .seconds(3600)) }
