import GatewayCrypto

/// The bucket of a customer in the Redis Cluster key model (docs/cluster-key-model.md): a customer's
/// keys and its index entries carry its bucket's hash tag, so they share one slot.
///
/// There are `count` buckets. A customer's bucket is the CRC16 of its id modulo `count` (ids are
/// ULIDs, so customers spread evenly). Bucket n's tag is the shortest string (in a fixed search
/// order, the same on every process) whose slot is n × 16: the buckets are spaced evenly over the
/// 16,384 slots, so masters with even slot ranges hold the same number of them.
///
/// ```swift
/// let b = CustomerBucket(customer: "01J8ZK...")
/// "tag:{\(b.tag)}:vip"  // in the same slot as every other key of the bucket
/// ```
public struct CustomerBucket: Sendable, Hashable {
    public static let count = 1_024
    /// Slots between two buckets' slots.
    public static let spacing = HashSlot.count / count

    public let index: Int

    public init(index: Int) {
        precondition((0..<Self.count).contains(index), "bucket \(index) out of range")
        self.index = index
    }

    /// CRC16 of the id modulo `count` (the id's own slot modulo `count`, as `count` divides 16,384).
    public init(customer id: String) { index = HashSlot.of(id) % Self.count }

    /// The hash tag (without braces) every key of the bucket carries.
    public var tag: String { Self.tags[index] }

    /// The Redis Cluster slot of the bucket's keys.
    public var slot: Int { index * Self.spacing }

    public static var all: [CustomerBucket] { (0..<count).map(CustomerBucket.init(index:)) }

    /// Tag of each bucket: `b` followed by the smallest base-36 number whose `b<number>` lands on the
    /// bucket's slot (found by counting up: about 120,000 tries, some tens of milliseconds, once).
    private static let tags: [String] = {
        var found = [String?](repeating: nil, count: count)
        var missing = count
        var n = 0
        while missing > 0 {
            let tag = "b" + String(n, radix: 36)
            let slot = HashSlot.of(tag)
            if slot % spacing == 0, found[slot / spacing] == nil {
                found[slot / spacing] = tag
                missing -= 1
            }
            n += 1
        }
        return found.map { $0! }
    }()
}
