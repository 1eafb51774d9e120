import Hummingbird
import Logging
import NIOCore

/// A loopback HTTP server for fake providers: binds 127.0.0.1 on a free port (or `port`), serves
/// `router` until `stop()`.
public final class FakeServer: Sendable {
    public let port: Int
    private let task: Task<Void, any Error>

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    public static func start(_ router: Router<BasicRequestContext>, port: Int = 0, logLevel: Logger.Level = .critical) async throws -> FakeServer {
        var logger = Logger(label: "fake-provider")
        logger.logLevel = logLevel
        let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "fake-provider"),
            onServerRunning: { channel in
                portSink.yield(channel.localAddress?.port ?? 0)
                portSink.finish()
            }, logger: logger)
        let task = Task { try await app.run() }
        var iterator = ports.makeAsyncIterator()
        guard let bound = await iterator.next(), bound > 0 else {
            task.cancel()
            throw FakeServerError.didNotStart
        }
        return FakeServer(port: bound, task: task)
    }

    private init(port: Int, task: Task<Void, any Error>) {
        self.port = port
        self.task = task
    }

    public func stop() async {
        task.cancel()
        _ = try? await task.value
    }
}

public enum FakeServerError: Error { case didNotStart }
