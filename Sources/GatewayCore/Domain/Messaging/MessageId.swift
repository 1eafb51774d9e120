import GatewayCrypto

/// Outbound message ids.
///
/// On a single Redis a message id is a ULID, as it always was. On a cluster it is `<tag>.<ULID>`,
/// where `<tag>` is the index shard tag of the slot its recipient's keys are in (the customer, or the
/// `channel:address` history subject of a message to an address), so that the message
/// (`msg:{<tag>}:<ULID>`), the recipient's contact history, message index and campaign exposures are
/// one slot: a claim with its frequency caps, and a completion with its exposure, stay one atomic call
/// (docs/cluster-key-model.md, "Sending"). A ULID never contains a dot.
public enum MessageId {
    /// The id for a ULID sent to `recipient` (a customer id or `Keys.contactSubject`): the ULID itself
    /// on a single Redis, tagged with the recipient's slot on a cluster.
    public static func make(_ ulid: String, recipient: String?, layout: IndexLayout) -> String {
        guard layout == .perSlot, let recipient else { return ulid }
        return tagged(ulid, slot: HashSlot.of(Keys.contactHistory(recipient)))
    }

    /// A message id this gateway makes: a ULID, or a shard tag, a dot and a ULID.
    public static func isValid(_ id: String) -> Bool {
        guard let dot = id.firstIndex(of: ".") else { return ULID.isValid(id) }
        let tag = id[..<dot]
        return tag.count >= 2 && tag.count <= 8 && tag.first == "s" && tag.dropFirst().allSatisfy { $0.isLowercase || $0.isNumber }
            && ULID.isValid(String(id[id.index(after: dot)...]))
    }

    /// The ULID of an id, and the slot its tag names (nil: an untagged id).
    public static func split(_ id: String) -> (ulid: Substring, slot: Int?) {
        guard let dot = id.firstIndex(of: ".") else { return (id[...], nil) }
        return (id[id.index(after: dot)...], HashSlot.of(String(id[..<dot])))
    }

    /// The id of a ULID in a slot (what a link token carries back).
    public static func tagged(_ ulid: String, slot: Int) -> String { IndexShard(slot: slot).tag! + "." + ulid }

    /// A key of the message: `<prefix>:{<ULID>}` (single Redis) or `<prefix>:{<tag>}:<ULID>` (cluster),
    /// in the message's slot (`msg` is the message itself).
    static func key(_ id: String, prefix: String = "msg") -> String {
        guard let dot = id.firstIndex(of: ".") else { return "\(prefix):{\(id)}" }
        return "\(prefix):{\(id[..<dot])}:\(id[id.index(after: dot)...])"
    }
}
