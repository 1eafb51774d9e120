import GatewayCore
import NIOConcurrencyHelpers
import Outbound
import RedisClient
import Store

/// Fallback at send time: when a campaign message fails for a recipient reason (WeChat unsubscribed or
/// bad openid, an opted-out or invalid number, a hard bounce, consent revoked since planning, a variable
/// missing), the engine asks for the same message on the campaign's next channel. The recipient is read
/// again (consent, addresses and profile as they are now) and the planner's own rules choose and
/// render the channel, so planning and fallback cannot disagree. The message keeps its id: the
/// ledger entry (campaign, customer) allows one delivery at most, whichever channel makes it.
public final class CampaignFallback: Sendable {
    let store: CampaignStore
    let customers: CustomerStore
    let planner: CampaignPlanner
    let compile: @Sendable (Campaign) throws -> CompiledCampaign
    /// Campaign id -> the campaign and its compiled templates (a definition never changes once created).
    private let compiled = NIOLockedValueBox<[String: (Campaign, CompiledCampaign)]>([:])

    public init(redis: RedisPool, customers: CustomerStore, compile: @escaping @Sendable (Campaign) throws -> CompiledCampaign) {
        self.store = CampaignStore(redis: redis)
        self.customers = customers
        self.planner = CampaignPlanner(redis: redis)
        self.compile = compile
    }

    /// The engine's `CampaignFallbackRenderer`.
    public var renderer: CampaignFallbackRenderer { { [self] m in try await self.next(after: m) } }

    /// The message on the first channel after `m.channel` (in the recipient's variant) that the
    /// recipient may get and that renders with their data; nil when there is none.
    public func next(after m: OutboundMessage) async throws -> OutboundMessage? {
        guard let id = m.campaign, let variant = m.variant, let customer = m.customerId, let (c, compiled) = try await campaign(id) else { return nil }
        let contents = compiled.contents[variant] ?? []
        guard let i = contents.firstIndex(where: { $0.channel == m.channel }), i + 1 < contents.count,
            let live = try await recipient(customer)
        else { return nil }
        guard
            case .send(let next) = planner.message(
                c, compiled: compiled, variant: variant, contents: contents[(i + 1)...], customer: live.id, hash: live.fields, identities: live.identities,
                createdAt: m.createdAt, messageId: m.id)  // the ledger key stays, even if the customer merged since
        else { return nil }
        return next
    }

    private func campaign(_ id: String) async throws -> (Campaign, CompiledCampaign)? {
        if let hit = compiled.withLockedValue({ $0[id] }) { return hit }
        guard let c = try await store.get(id) else { return nil }
        // A campaign today's adapters cannot compile (one was disabled since) has no next channel;
        // the message ends with its own reason instead of failing again at every take-over.
        guard let built = try? compile(c) else { return nil }
        let entry = (c, built)
        compiled.withLockedValue { cache in
            if cache.count >= 256 { cache.removeAll() }
            cache[id] = entry
        }
        return entry
    }

    /// The customer as they are now, following a merge to the survivor.
    private func recipient(_ id: String) async throws -> Customer? {
        var lookup = try await customers.customer(id: id)
        if case .merged(let survivor) = lookup { lookup = try await customers.customer(id: survivor) }
        guard case .found(let c) = lookup else { return nil }
        return c
    }
}
