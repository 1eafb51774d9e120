import Foundation

/// How many replicas must confirm a cluster master's writes before they are answered (Redis `WAIT`),
/// shared by the node's workers and kept current by the cluster from its slot map: the configured
/// number, but never more than the master's online replicas (a master left without one writes as a
/// single Redis does rather than refuse every write).
final class ReplicaAcks: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0  // guarded by lock
    /// How long `WAIT` may block the connection, in milliseconds.
    let timeoutMs: Int

    init(timeoutMs: Int) { self.timeoutMs = timeoutMs }

    var required: Int {
        get { lock.withLock { count } }
        set { lock.withLock { count = newValue } }
    }

    /// Commands that change no data: a pipeline of only these needs no `WAIT`.
    private static let control: Set<String> = [
        "CLUSTER", "PING", "INFO", "CLIENT", "CONFIG", "ASKING", "READONLY", "READWRITE", "SCAN", "MEMORY", "DBSIZE", "SLOWLOG", "COMMAND",
        "AUTH", "HELLO", "SELECT", "WAIT", "ECHO", "TIME", "LATENCY",
    ]

    /// Whether the command may change data (and so must reach the replicas before it is answered).
    static func writes(_ command: [String]) -> Bool {
        guard let name = command.first?.uppercased() else { return false }
        return !ReadOnlyCommand.names.contains(name) && !control.contains(name)
    }
}
