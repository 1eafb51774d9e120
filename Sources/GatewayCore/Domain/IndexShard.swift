import GatewayCrypto

/// Where a customer's index entries live (docs/cluster-key-model.md).
///
/// The audience indexes (tags, field and attribute indexes, last seen, scores, all customers) are
/// sharded by Redis Cluster hash slot. On a cluster, a customer's entries go to the shard of the
/// slot its own keys (`cust:{<id>}`) hash to, under a tag whose slot is that slot: a customer's
/// write and its reindex stay one atomic call in one slot, and an audience is evaluated shard by
/// shard, in parallel across masters. On a single Redis there is one shard, under the names the
/// indexes always had (`tag:vip`), so a single node pays nothing for the cluster.
///
/// ```swift
/// let shard = IndexShard(customer: id)      // on a cluster
/// shard.key("tag", "vip")                   // "tag:{s2bx}:vip", in the slot of cust:{<id>}
/// IndexShard.single.key("tag", "vip")        // "tag:vip"
/// ```
public struct IndexShard: Sendable, Hashable {
    /// The hash tag (without braces) the shard's keys carry; nil for the single shard.
    public let tag: String?

    /// The one shard of a single Redis: the unsharded names.
    public static let single = IndexShard(tag: nil)

    private init(tag: String?) { self.tag = tag }

    /// The shard of one Redis Cluster slot.
    public init(slot: Int) {
        precondition((0..<HashSlot.count).contains(slot), "slot \(slot) out of range")
        tag = Self.slotTags[slot]
    }

    /// The shard of a customer on a cluster: the one in the slot of its keys.
    public init(customer id: String) { self.init(slot: HashSlot.of(Keys.customer(id))) }

    /// What the Lua functions get to name the shard's keys the same way (`''` or `{<tag>}`).
    public var argument: String { tag.map { "{\($0)}" } ?? "" }

    /// An index key: `<base>:<name>` (single) or `<base>:{<tag>}:<name>`; without a name `<base>`
    /// or `<base>:{<tag>}`. The Lua twin is `ix` in customer_base.lua.
    public func key(_ base: String, _ name: String? = nil) -> String {
        let sharded = tag.map { "\(base):{\($0)}" } ?? base
        return name.map { "\(sharded):\($0)" } ?? sharded
    }

    /// The shard's copy of an index key named as on a single Redis (`tag:vip` -> `tag:{<t>}:vip`,
    /// `lastseen` -> `lastseen:{<t>}`): the base is what comes before the first colon.
    public func key(single: String) -> String {
        guard tag != nil else { return single }
        guard let colon = single.firstIndex(of: ":") else { return key(single) }
        return key(String(single[..<colon]), String(single[single.index(after: colon)...]))
    }

    /// Every shard of a cluster, in slot order.
    public static let everySlot: [IndexShard] = (0..<HashSlot.count).map(IndexShard.init(slot:))

    /// Tag of each slot: `s` followed by the smallest base-36 number whose `s<number>` lands on the
    /// slot (found by counting up, the same on every process: about 170,000 tries, once).
    private static let slotTags: [String] = {
        var found = [String?](repeating: nil, count: HashSlot.count)
        var missing = HashSlot.count
        var n = 0
        while missing > 0 {
            let tag = "s" + String(n, radix: 36)
            let slot = HashSlot.of(tag)
            if found[slot] == nil {
                found[slot] = tag
                missing -= 1
            }
            n += 1
        }
        return found.map { $0! }
    }()
}

/// How the indexes are laid out: one shard on a single Redis, one per slot on a cluster.
public enum IndexLayout: String, Sendable {
    case single
    case perSlot = "slot"

    /// The shard that holds a customer's index entries.
    public func shard(customer id: String) -> IndexShard { self == .single ? .single : IndexShard(customer: id) }

    /// Every shard a reader visits.
    public var shards: [IndexShard] { self == .single ? [.single] : IndexShard.everySlot }
}
