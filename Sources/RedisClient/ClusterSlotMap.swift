import GatewayCrypto

/// Which node serves each of Redis Cluster's 16,384 slots, read from `CLUSTER SHARDS`.
public struct ClusterSlotMap: Sendable {
    /// One master and its replicas, with the slot ranges the master serves.
    public struct Shard: Sendable, Equatable {
        public var slots: [ClosedRange<Int>]
        public var master: Node
        public var replicas: [Node]
        public var slotCount: Int { slots.reduce(0) { $0 + $1.count } }
    }

    public struct Node: Sendable, Equatable {
        public var id: String
        /// `host:port`, as `MOVED` and `ASK` replies name it.
        public var endpoint: String
        /// `online`, `fail`, or `loading` (also said of a replica that has not reported a replication offset yet).
        public var health: String
    }

    public private(set) var shards: [Shard]
    /// Per slot: the index in `shards` of the master serving it, or -1.
    private var owner: [Int16]
    /// Slots a `MOVED` reply moved since the map was read: slot -> endpoint.
    private var moved: [Int: String] = [:]

    public static let empty = ClusterSlotMap(shards: [])

    init(shards: [Shard]) {
        self.shards = shards
        owner = [Int16](repeating: -1, count: HashSlot.count)
        for (i, shard) in shards.enumerated() {
            for range in shard.slots where range.lowerBound >= 0 && range.upperBound < HashSlot.count {
                for slot in range { owner[slot] = Int16(i) }
            }
        }
    }

    public var isEmpty: Bool { shards.isEmpty }

    /// The endpoint of the master serving the slot, nil when no master does (the cluster is down there).
    public func master(of slot: Int) -> String? {
        if let endpoint = moved[slot] { return endpoint }
        let i = owner[slot]
        return i < 0 ? nil : shards[Int(i)].master.endpoint
    }

    /// The slot's replicas that are online.
    func replicas(of slot: Int) -> [String] {
        if moved[slot] != nil { return [] }
        let i = owner[slot]
        return i < 0 ? [] : shards[Int(i)].replicas.filter { $0.health == "online" }.map(\.endpoint)
    }

    public var masters: [String] { shards.map(\.master.endpoint) }

    /// How many online replicas the master at `endpoint` has (0 when it is not a master in this map).
    func onlineReplicaCount(master endpoint: String) -> Int {
        shards.first { $0.master.endpoint == endpoint }?.replicas.filter { $0.health == "online" }.count ?? 0
    }

    /// Every node the map names, masters first.
    var endpoints: [String] { masters + shards.flatMap { $0.replicas.map(\.endpoint) } }

    /// Records a `MOVED` answer until the next full read.
    mutating func move(slot: Int, to endpoint: String) { moved[slot] = endpoint }

    /// Parses a `CLUSTER SHARDS` reply (RESP2: each shard and node a flat field/value array). Shards
    /// without slots (a failed master that lost them, a node being added) are left out.
    static func parse(shards reply: RedisValue) throws -> ClusterSlotMap {
        guard let items = reply.array else { throw RedisError(.server, command: "CLUSTER SHARDS", message: "not an array") }
        var shards: [Shard] = []
        for item in items {
            let fields = pairs(item)
            let bounds = fields["slots"]?.array?.compactMap(\.int) ?? []
            var ranges: [ClosedRange<Int>] = []
            var i = 0
            while i + 1 < bounds.count {
                if bounds[i] <= bounds[i + 1] { ranges.append(bounds[i]...bounds[i + 1]) }
                i += 2
            }
            var master: Node?
            var replicas: [Node] = []
            for entry in fields["nodes"]?.array ?? [] {
                let n = pairs(entry)
                guard let id = n["id"]?.string, let port = n["port"]?.int else { continue }
                var host = n["endpoint"]?.string ?? ""
                if host.isEmpty || host == "?" { host = n["ip"]?.string ?? "" }
                guard !host.isEmpty else { continue }
                let node = Node(id: id, endpoint: "\(host):\(port)", health: n["health"]?.string ?? "online")
                if n["role"]?.string == "master" { master = node } else { replicas.append(node) }
            }
            if let master, !ranges.isEmpty { shards.append(Shard(slots: ranges, master: master, replicas: replicas)) }
        }
        guard !shards.isEmpty else { throw RedisError(.server, command: "CLUSTER SHARDS", message: "no node serves any slot") }
        return ClusterSlotMap(shards: shards.sorted { $0.slots[0].lowerBound < $1.slots[0].lowerBound })
    }

    private static func pairs(_ value: RedisValue) -> [String: RedisValue] {
        let a = value.array ?? []
        var out: [String: RedisValue] = [:]
        var i = 0
        while i + 1 < a.count {
            if let k = a[i].string { out[k] = a[i + 1] }
            i += 2
        }
        return out
    }
}
