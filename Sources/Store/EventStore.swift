import GatewayCore
import RedisClient

/// Interactions from outside WeChat (a web form, a download, live-stream watch time, an event check-in),
/// recorded like webhook ones: on the customer's timeline and on `stream:inbound`, where the scoring
/// worker scores them. A customer is found by any of the event's identities (or its id); identities
/// not seen before create one; an event whose identities belong to two customers merges them.
public struct EventStore: Sendable {
    let redis: RedisPool
    let timelineCap: Int
    let streamMaxLen: Int
    /// The identity claims and merges of a cluster's steps (`recordInSteps`).
    let customers: CustomerStore

    public init(redis: RedisPool, config: GatewayConfig) {
        self.redis = redis
        timelineCap = config.customers.timelineCap
        streamMaxLen = config.streams.inboundMaxLen
        customers = CustomerStore(redis: redis, config: config)
    }

    public struct Event: Sendable {
        /// The client's id for the event: a second delivery with the same id is recorded once.
        public var id: String?
        public var customer: String?
        public var identities: [Identity]
        /// Identities the sender vouches for (`verified: true`): only these may merge two customers.
        public var verified: Set<Identity> = []
        public var type: String
        public var atMs: Int64
        /// A JSON object of scalars (the `data` of the timeline entry and the scoring payload).
        public var data: JSONValue

        public init(id: String?, customer: String?, identities: [Identity], type: String, atMs: Int64, data: JSONValue) {
            self.id = id
            self.customer = customer
            self.identities = identities
            self.type = type
            self.atMs = atMs
            self.data = data
        }
    }

    public enum Outcome: Sendable, Equatable {
        case recorded(customer: String, created: Bool)
        case duplicate(customer: String)
        /// The event named a customer id that does not exist.
        case unknownCustomer
    }

    /// Records a batch in one script (all or nothing). An identity held by another customer merges the
    /// two only when it is verified and `mayMerge` (the caller's role allows merges); otherwise the pair
    /// becomes a merge candidate (`MergeCandidateStore`) and the identity stays where it is.
    /// A big batch runs as several scripts of `chunkSize` events (each all or nothing), so no single
    /// call holds Redis for long; a client that retries a failed batch with event ids records each once.
    public func record(_ events: [Event], mayMerge: Bool, actor: String, nowMs: Int64) async throws -> [Outcome] {
        if redis.isCluster { return try await recordInSteps(events, mayMerge: mayMerge, actor: actor, nowMs: nowMs) }
        var out = [Outcome]()
        out.reserveCapacity(events.count)
        for start in stride(from: 0, to: events.count, by: Self.chunkSize) {
            out += try await recordChunk(events[start..<min(start + Self.chunkSize, events.count)], mayMerge: mayMerge, actor: actor, nowMs: nowMs)
        }
        return out
    }

    public static let chunkSize = 100

    func recordChunk(_ events: ArraySlice<Event>, mayMerge: Bool, actor: String, nowMs: Int64) async throws -> [Outcome] {
        var args = [String(nowMs), String(timelineCap), String(streamMaxLen), actor]
        for e in events {
            let entry = JSONValue.object(["at": .int(e.atMs), "type": .string(e.type), "data": e.data]).text
            args += [e.id ?? "", e.customer ?? "", ULID.make(milliseconds: nowMs), e.type, String(e.atMs), entry, e.data.text]
            args += [String(e.identities.count)] + e.identities.map { (mayMerge && e.verified.contains($0) ? "v" : "u") + $0.storageForm }
            // The id each identity's merge candidate would get (one event can collide with several customers).
            args += e.identities.map { _ in ULID.make(milliseconds: nowMs) }
        }
        let r = try await redis.fcall(StoreFunctions.library, "events_record", keys: [], args: args).array ?? []
        return r.map { v in
            let parts = v.strings
            switch parts.first {
            case "new": return .recorded(customer: parts[1], created: true)
            case "ok": return .recorded(customer: parts[1], created: false)
            case "dup": return .duplicate(customer: parts.count > 1 ? parts[1] : "")
            default: return .unknownCustomer
            }
        }
    }

}
