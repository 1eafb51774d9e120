import FakeProviders
import Foundation

// scrm-fakes: the loopback fake providers (WeChat API, Twilio, Alibaba SMS, SendGrid, transport test
// routes) as a process, for benchmarks and manual runs.
// usage: scrm-fakes [port]   (prints "listening on PORT" and the environment the specs need)
let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 0 : 0
let fakes = try await ProviderFakes.start(port: port)
print("listening on \(fakes.server.port)")
for (key, value) in fakes.environment.sorted(by: { $0.key < $1.key }) { print("export \(key)='\(value)'") }
FileHandle.standardOutput.synchronizeFile()
while true { try await Task.sleep(for: .seconds(3600)) }
