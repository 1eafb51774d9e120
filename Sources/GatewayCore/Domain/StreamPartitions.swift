import GatewayCrypto

/// How the busy streams (`stream:inbound`, the send queues) are split on a Redis Cluster
/// (docs/cluster-key-model.md, "Stream partitions"). A stream is one key, so one master would serve
/// every append and read of it; split into `count` partitions, each its own stream with its own
/// consumer groups, the work spreads over the masters. A single Redis has one partition, under the
/// names the streams always had.
///
/// - Partition p is `<name>:{<tag>}`, its tag in the middle of the p-th of `count` equal slot ranges,
///   so partitions spread evenly over masters that hold even ranges (with one partition, the stream
///   keeps its name).
/// - An entry goes to the partition of its subject's slot (a customer for `stream:inbound`, a message
///   for a send queue): the p-th range holds the slots `p * 16384 / count ..< (p + 1) * 16384 / count`,
///   so a partition mostly lives on the master that holds its subjects. A customer's interactions stay
///   in order in one partition.
/// - Consumers read every partition. Every gateway must use the same `count`
///   (`redis.streamPartitions`); raising it is safe, lowering it strands the partitions above.
///
/// ```swift
/// let streams = StreamPartitions(count: 6)
/// streams.inbound(customer: id)         // "stream:inbound:{s1k2}" (with count 1: "stream:inbound")
/// streams.all(Keys.inboundStream)      // the 6 streams a consumer reads
/// ```
public struct StreamPartitions: Sendable, Hashable {
    public let count: Int

    /// A single Redis: one partition, the streams' own names.
    public static let single = StreamPartitions(count: 1)

    public static let range = 1...64

    public init(count: Int) {
        precondition(Self.range.contains(count), "stream partitions \(count) out of \(Self.range)")
        self.count = count
    }

    /// Partition `p` of the stream `base`.
    public func name(_ base: String, partition p: Int) -> String {
        guard count > 1 else { return base }
        let middle = (2 * p + 1) * HashSlot.count / (2 * count)
        return "\(base):{\(IndexShard(slot: middle).tag!)}"
    }

    /// Every partition of `base`, in order.
    public func all(_ base: String) -> [String] { (0..<count).map { name(base, partition: $0) } }

    /// The partition holding the subjects of one slot.
    public func partition(ofSlot slot: Int) -> Int { slot * count / HashSlot.count }

    /// The partition of `base` for a subject key (`Keys.customer(id)`, `Keys.message(id)`).
    public func stream(_ base: String, for subjectKey: String) -> String {
        count == 1 ? base : name(base, partition: partition(ofSlot: HashSlot.of(subjectKey)))
    }

    /// The partition of `stream:inbound` a customer's interactions go to.
    public func inbound(customer id: String) -> String { stream(Keys.inboundStream, for: Keys.customer(id)) }

    /// The send queue of a message (its channel and lane, the partition of its slot).
    public func outbound(channel: String, lane: OutboundMessage.Lane, message id: String) -> String {
        stream(Keys.outboundStream(channel: channel, lane: lane), for: Keys.message(id))
    }

    /// A partition's name without its tag: the stream it is part of.
    public static func base(of stream: String) -> String {
        guard stream.hasSuffix("}"), let open = stream.lastIndex(of: "{"), open > stream.startIndex,
            stream[stream.index(before: open)] == ":"
        else { return stream }
        return String(stream[..<stream.index(before: open)])
    }

    /// An entry id unique over the partitions (`<ms>-<seq>` in partition 0, as in an unpartitioned
    /// stream; `<ms>-<seq>@<p>` above): what consumers record an entry as.
    public static func entryId(_ id: String, partition p: Int) -> String { p == 0 ? id : "\(id)@\(p)" }
}
