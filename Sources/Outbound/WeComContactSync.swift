import Foundation
import GatewayCore
import Logging
import Metrics
import RedisClient
import Store

/// New WeCom external contacts, after their `add_external_contact` callback is stored (it already set
/// the owner from `UserID`, the source tag from `State` and the per-state counts):
/// 1. the welcome, through `send_welcome_msg` with the callback's WelcomeCode, while the code is valid
///    (WeCom allows 20 s; the gateway gives up at `welcomeDeadlineMs` to keep a margin), chosen from
///    the account's reply rules: the state's `sceneWelcomes` entry, else `welcome`;
/// 2. the contact itself (`externalcontact/get`): the unionid is bound, which links (merges) the
///    customer with the same person's Official Account follower, and the name is kept as
///    `profile.wecomName`.
/// Reads `stream:inbound` in its own consumer group. Without Redis an entry stays pending and is read
/// again; a contact WeCom will not return is counted (`scrm_wecom_contacts_total{unionid="failed"}`)
/// and left, so that it cannot hold up the welcomes behind it.
public struct WeComContactSync: Sendable {
    let redis: RedisPool
    let customers: CustomerStore
    let surfaces: SurfaceStore
    let api: WeComContactAPI
    /// WeCom accounts that can call the API (they have the customer-contact secret).
    let accounts: [String: Account]
    let clock: @Sendable () -> Int64
    public static let group = "wecom-contacts"
    public static let welcomeDeadlineMs: Int64 = 18_000
    let logger = Logger(label: "wecom-contacts")

    public init(redis: RedisPool, customers: CustomerStore, api: WeComContactAPI, accounts: [Account], clock: @escaping @Sendable () -> Int64) {
        self.redis = redis
        self.customers = customers
        self.surfaces = SurfaceStore(redis: redis)
        self.api = api
        self.accounts = Dictionary(accounts.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        self.clock = clock
    }

    public func run() async {
        await StreamGroupReader(redis: redis, streams: redis.streams.all(Keys.inboundStream), group: Self.group, from: "$").run { _, fields in
            guard let type = fields["type"], type == "wecom.add_external_contact" || type == "wecom.add_half_external_contact",
                let id = fields["account"], let account = accounts[id], let customer = fields["customer"], !customer.isEmpty,
                case .object(let payload)? = JSONValue.parse(Array((fields["payload"] ?? "").utf8)),
                let external = payload["ExternalUserID"]?.scalarText
            else { return }
            let at = Int64(fields["at"] ?? "") ?? 0
            try await handle(
                account: account, customer: customer, externalUserId: external, state: payload["State"]?.scalarText,
                welcomeCode: payload["WelcomeCode"]?.scalarText, at: at)
        }
    }

    func handle(account: Account, customer: String, externalUserId: String, state: String?, welcomeCode: String?, at: Int64) async throws {
        if let code = welcomeCode, !code.isEmpty {
            await welcome(account: account, code: code, state: state, age: clock() - at)
        }
        let contact: WeComContactAPI.Contact
        do {
            contact = try await api.contact(account: account.id, externalUserId: externalUserId)
        } catch let e as RedisError {
            throw e  // the token needs Redis: left pending, read again
        } catch {
            // Not retried: leaving the entry pending would hold the entries after it (and their 20 s
            // welcome codes) until it is reclaimed a minute later. The callback itself is stored.
            Counter(label: "scrm_wecom_contacts_total", dimensions: [("account", account.id), ("unionid", "failed")]).increment()
            logger.warning("external contact not fetched", metadata: ["account": .string(account.id), "error": .string("\(error)")])
            return
        }
        let now = clock()
        var id = customer
        if let union = contact.unionId, union.utf8.count <= 128, union.utf8.allSatisfy(IdentityInput.isTokenByte) {
            switch try await customers.bind(Identity(kind: .unionid, value: union), to: customer, nowMs: now) {
            case .merged(let survivor, _): id = survivor
            case .bound(let c), .alreadyBound(let c): id = c
            case .notFound: break
            }
        }
        if !contact.name.isEmpty {
            var patch = CustomerStore.ProfilePatch()
            patch.fields["profile.wecomName"] = String(contact.name.prefix(64))
            _ = try await customers.patch(id: id, patch, nowMs: now)
        }
        Counter(label: "scrm_wecom_contacts_total", dimensions: [("account", account.id), ("unionid", contact.unionId == nil ? "no" : "yes")]).increment()
    }

    /// Sends the welcome unless the code is too old; failures are counted, never retried (the code is single-use).
    func welcome(account: Account, code: String, state: String?, age: Int64) async {
        guard age < Self.welcomeDeadlineMs else {
            Counter(label: "scrm_wecom_welcomes_total", dimensions: [("account", account.id), ("result", "expired")]).increment()
            return
        }
        do {
            let rules = try await surfaces.replyRules(account: account.id) ?? ReplyRules(account: account)
            guard let content = state.flatMap({ rules.sceneWelcomes[$0] }) ?? rules.welcome else { return }
            try await api.sendWelcome(account: account.id, welcomeCode: code, content: content)
            Counter(label: "scrm_wecom_welcomes_total", dimensions: [("account", account.id), ("result", "sent")]).increment()
        } catch {
            Counter(label: "scrm_wecom_welcomes_total", dimensions: [("account", account.id), ("result", "failed")]).increment()
            logger.warning("welcome not sent", metadata: ["account": .string(account.id), "error": .string("\(error)")])
        }
    }
}
