import GatewayCore
import Logging
import NIOConcurrencyHelpers
import Store

/// This process's copy of every account's QR scenes and reply rules, which the webhooks read on each
/// callback without a Redis round trip. `run()` polls the accounts' versions (one pipelined GET per
/// `pollMs`) and reloads an account whose version moved, so a change made through any process is
/// answered everywhere within a poll. The config file's `scenes` and `autoReply` are the initial
/// state: config scenes stay unless a stored scene has the same name; stored reply rules replace the
/// config's once saved.
public final class SurfaceCache: Sendable {
    struct Entry {
        var version: Int
        var attributions: [String: SceneAttribution]
        var replies: CompiledReplies
    }

    let store: SurfaceStore
    let accounts: [String: Account]
    let pollMs: Int
    private let entries: NIOLockedValueBox<[String: Entry]>
    let logger = Logger(label: "surfaces")

    public init(config: GatewayConfig, store: SurfaceStore, pollMs: Int = 250) {
        self.store = store
        self.pollMs = pollMs
        accounts = Dictionary(config.accounts.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var initial = [String: Entry]()
        for account in config.accounts { initial[account.id] = Self.entry(account: account, version: -1, scenes: [], replies: nil) }
        entries = NIOLockedValueBox(initial)
    }

    static func entry(account: Account, version: Int, scenes: [QRScene], replies: ReplyRules?) -> Entry {
        var attributions = account.scenes.mapValues { SceneAttribution(tags: [$0]) }
        for s in scenes { attributions[s.scene] = SceneAttribution(tags: s.tags, owner: s.owner) }
        return Entry(version: version, attributions: attributions, replies: CompiledReplies(replies ?? ReplyRules(account: account)))
    }

    /// What a scan or subscribe with `scene` applies, if the scene is known.
    public func attribution(account: String, scene: String) -> SceneAttribution? {
        entries.withLockedValue { $0[account]?.attributions[scene] }
    }

    public func replies(account: String) -> CompiledReplies? { entries.withLockedValue { $0[account]?.replies } }

    /// Reloads the accounts whose version moved; returns how many. Redis errors leave the copy as it was.
    @discardableResult
    public func refresh() async throws -> Int {
        let ids = accounts.keys.sorted()
        let versions = try await store.versions(accounts: ids)
        var reloaded = 0
        for id in ids {
            let known = entries.withLockedValue { $0[id]?.version ?? -1 }
            guard let account = accounts[id], let v = versions[id], v != known else { continue }
            let snap = try await store.snapshot(account: id)
            let entry = Self.entry(account: account, version: snap.version, scenes: snap.scenes, replies: snap.replies)
            entries.withLockedValue { $0[id] = entry }
            reloaded += 1
        }
        return reloaded
    }

    /// Polls until cancelled.
    public func run() async {
        var failing = false
        while !Task.isCancelled {
            do {
                try await refresh()
                failing = false
            } catch {
                if !failing { logger.warning("reply rules and QR scenes not refreshed; answering with the last copy", metadata: ["error": "\(error)"]) }
                failing = true
            }
            try? await Task.sleep(for: .milliseconds(pollMs))
        }
    }
}
