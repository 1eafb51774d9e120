import GatewayCrypto

/// An error reply that says the command belongs elsewhere, or later: Redis Cluster's `MOVED` (the slot
/// has a new owner), `ASK` (the slot is being migrated and this key is already on the target),
/// `TRYAGAIN` (a multi-key command during a migration) and `CLUSTERDOWN`. The command did not run.
enum ClusterRedirect: Equatable {
    case moved(slot: Int, endpoint: String)
    case ask(slot: Int, endpoint: String)
    case tryAgain
    case clusterDown

    /// `answeredBy` fills in the host when a node announces only `:port`.
    init?(_ reply: RedisValue, answeredBy: String) {
        guard case .error(let message) = reply else { return nil }
        if message.hasPrefix("MOVED ") || message.hasPrefix("ASK ") {
            let parts = message.split(separator: " ")
            guard parts.count >= 3, let slot = Int(parts[1]), (0..<HashSlot.count).contains(slot) else { return nil }
            var endpoint = String(parts[2])
            if endpoint.hasPrefix(":"), let colon = answeredBy.lastIndex(of: ":") { endpoint = answeredBy[..<colon] + endpoint }
            self = parts[0] == "MOVED" ? .moved(slot: slot, endpoint: endpoint) : .ask(slot: slot, endpoint: endpoint)
        } else if message.hasPrefix("TRYAGAIN") {
            self = .tryAgain
        } else if message.hasPrefix("CLUSTERDOWN") {
            self = .clusterDown
        } else {
            return nil
        }
    }

    var kind: String {
        switch self {
        case .moved: "moved"
        case .ask: "ask"
        case .tryAgain: "tryagain"
        case .clusterDown: "clusterdown"
        }
    }
}
