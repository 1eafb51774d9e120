import FakeProviders
import Foundation

// scrm-fakes: the loopback fake providers (WeChat API, Twilio, Alibaba SMS, SendGrid, transport test
// routes) as a process, for benchmarks and manual runs.
// usage: scrm-fakes [port]   (prints "listening on PORT" and the environment the specs need)
let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 0 : 0
// FAKE_HUBSPOT_LIMIT / FAKE_HUBSPOT_WINDOW_MS: the HubSpot fake's rolling limit (default 100 per 10 s).
// FAKE_MARKETO_LIMIT: the Marketo fake's calls per 20 s (default Marketo's 100).
let env = ProcessInfo.processInfo.environment
let fakes = try await ProviderFakes.start(
    port: port, hubspotLimit: env["FAKE_HUBSPOT_LIMIT"].flatMap { Int($0) } ?? 100, hubspotWindowMs: env["FAKE_HUBSPOT_WINDOW_MS"].flatMap { Int($0) } ?? 10_000,
    marketoLimit: env["FAKE_MARKETO_LIMIT"].flatMap { Int($0) } ?? 100)
// Written straight to the descriptor (print() would sit in a buffer when stdout is a file).
var lines = "listening on \(fakes.server.port)\n"
for (key, value) in fakes.environment.sorted(by: { $0.key < $1.key }) { lines += "export \(key)='\(value)'\n" }
FileHandle.standardOutput.write(Data(lines.utf8))
while true { try await Task.sleep(for: .seconds(3600)) }
