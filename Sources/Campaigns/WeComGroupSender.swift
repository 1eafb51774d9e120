import Foundation
import GatewayCore
import GatewayCrypto
import Logging
import Metrics
import NIOConcurrencyHelpers
import Outbound
import RedisClient
import Store

/// Sends a running campaign's WeCom channel once planning is done: each group the planner filled (an
/// owner's recipients in one variant) becomes tasks of at most 10,000 (`add_msg_template`, sent by the
/// owner), then each task's results are polled (`get_groupmsg_send_result`) until every recipient is
/// final or a week has passed, and counted into the campaign's report.
///
/// At most once: a task is claimed in Redis before WeCom is called and closed after. When a process
/// dies between the two, the claim runs out (`leaseMs`, longer than any call) and the next process
/// looks for the task on WeCom (the corp's group messages since the claim with the same text whose
/// sender is the owner, and not already one of the campaign's) before creating it again.
public struct WeComGroupSender: Sendable {
    let campaigns: CampaignStore
    let store: WeComGroupStore
    let api: WeComContactAPI
    let compile: @Sendable (Campaign) throws -> CompiledCampaign
    let clock: @Sendable () -> Int64
    let process: String
    let leaseMs: Int64
    let firstPollMs: Int64
    /// Tasks WeCom asked to try later: task -> not before (ms).
    private let backoff = NIOLockedValueBox<[String: Int64]>([:])
    let logger = Logger(label: "wecom-group-send")

    public init(
        redis: RedisPool, api: WeComContactAPI, compile: @escaping @Sendable (Campaign) throws -> CompiledCampaign, leaseMs: Int64 = 120_000,
        firstPollMs: Int64 = 30_000, clock: @escaping @Sendable () -> Int64
    ) {
        campaigns = CampaignStore(redis: redis)
        store = WeComGroupStore(redis: redis)
        self.api = api
        self.compile = compile
        self.clock = clock
        self.leaseMs = leaseMs
        self.firstPollMs = firstPollMs
        process = "\(ProcessInfo.processInfo.hostName)-\(getpid())-\(SecureRandom.alphanumeric(6))"
    }

    public func run(intervalMs: Int = 1000) async {
        while !Task.isCancelled {
            do { try await pass() } catch { logger.warning("group send pass failed", metadata: ["error": .string("\(error)")]) }
            try? await Task.sleep(for: .milliseconds(intervalMs))
        }
    }

    /// One pass: the tasks of running, planned campaigns, then the results polls due.
    public func pass() async throws {
        for id in try await campaigns.active() {
            guard let c = try await campaigns.get(id), c.state == .running, c.planDone,
                c.definition.channels.contains(where: { $0.channel == WeComGroupSend.channel })
            else { continue }
            try await send(c)
        }
        for (campaign, task) in try await store.takeDuePolls(nowMs: clock()) { try await poll(campaign, task: task) }
    }

    /// Makes the campaign's tasks (the first pass after planning) and creates those not yet created.
    func send(_ c: Campaign) async throws {
        let compiled = try compile(c)
        var tasks = try await store.tasks(c.id)
        let made = Set(tasks.map { WeComGroupSend.group(variant: $0.variant, owner: $0.owner) })
        // Each group's split into tasks, read once per pass (the groups are complete once planning is done).
        var splits = [String: [[String]]]()
        func chunks(_ group: String) async throws -> [[String]] {
            if let known = splits[group] { return known }
            let split = WeComGroupSend.chunks(Array(try await store.recipients(c.id, group: group).keys))
            splits[group] = split
            return split
        }
        let missing = try await store.groups(c.id).filter { !made.contains($0) }
        if !missing.isEmpty {
            var new = [WeComGroupTask]()
            for group in missing {
                guard let (variant, owner) = WeComGroupSend.parseGroup(group), let content = Self.content(compiled, variant: variant) else { continue }
                for (i, chunk) in try await chunks(group).enumerated() {
                    new.append(WeComGroupTask(account: content.account ?? "", owner: owner, variant: variant, chunk: i, recipients: chunk.count))
                }
            }
            try await store.add(c.id, new)
            tasks = try await store.tasks(c.id)
        }
        for task in tasks where task.state == .pending {
            if let notBefore = backoff.withLockedValue({ $0[task.id] }), notBefore > clock() { continue }
            let split = try await chunks(WeComGroupSend.group(variant: task.variant, owner: task.owner))
            guard task.chunk < split.count else { continue }
            try await create(c, compiled: compiled, task: task, recipients: split[task.chunk], known: Set(tasks.compactMap(\.msgId)))
        }
    }

    static func content(_ compiled: CompiledCampaign, variant: String) -> CompiledCampaign.Content? {
        compiled.contents[variant]?.first(where: \.isGroupSend)
    }

    /// Creates one task on WeCom for `recipients` (its chunk of the group), unless another process holds it.
    func create(_ c: Campaign, compiled: CompiledCampaign, task: WeComGroupTask, recipients: [String], known: Set<String>) async throws {
        guard let content = Self.content(compiled, variant: task.variant) else { return }
        let text = content.text?.source
        var task = task
        let now = clock()
        switch try await store.claim(c.id, task: task.id, nowMs: now, leaseMs: leaseMs, process: process) {
        case .busy, .done: return
        case .claimed: break
        case .inDoubt(let since):
            if let found = try await findCreated(task, text: text, attachments: content.groupAttachments.count, since: since, known: known) {
                task.state = .submitted
                task.msgId = found
                task.createdAt = since
                task.foundAfterCrash = true
                _ = try await store.close(c.id, task, process: process, failure: nil, failList: [], pollAtMs: clock())
                Counter(label: "scrm_wecom_group_tasks_total", dimensions: [("result", "found_after_crash")]).increment()
                return
            }
        }
        do {
            let r = try await api.createGroupTask(
                account: task.account, sender: task.owner, externalUserIds: recipients, text: text, attachments: content.groupAttachments)
            task.state = .submitted
            task.msgId = r.msgId
            task.failList = r.failList.count
            task.createdAt = clock()
            let closed = try await store.close(
                c.id, task, process: process, failure: nil, failList: r.failList, pollAtMs: task.nextPoll(nowMs: clock(), firstAfterMs: firstPollMs))
            if !closed { logger.warning("task closed by another process after this one created it", metadata: ["task": .string(task.id)]) }
            Counter(label: "scrm_wecom_group_tasks_total", dimensions: [("result", "created")]).increment()
        } catch let e as WeChatAPIClient.APIError where Self.refusal(e) {
            task.state = .failed
            task.error = "WeCom \(e.code): \(e.message)"
            _ = try await store.close(c.id, task, process: process, failure: "wecom_\(e.code)", failList: [], pollAtMs: nil)
            Counter(label: "scrm_wecom_group_tasks_total", dimensions: [("result", "refused")]).increment()
        } catch let e as RedisError {
            throw e
        } catch {
            // WeCom answered "try later" (nothing was created: the claim is given back), or no clear
            // answer came (the claim is kept and runs out, and the next try looks on WeCom first).
            if let e = error as? WeChatAPIClient.APIError, Self.tryLater(e) { try await store.release(c.id, task: task.id, process: process) }
            backoff.withLockedValue { $0[task.id] = clock() + 30_000 }
            logger.warning("group task not created yet", metadata: ["task": .string(task.id), "error": .string("\(error)")])
        }
    }

    /// WeCom said to try later, having created nothing: system busy, call frequency and quota limits.
    static func tryLater(_ e: WeChatAPIClient.APIError) -> Bool { e.code == "-1" || e.isQuota || e.code == "45033" }

    /// WeCom refused the task for good (an errcode that is not "try later"); an answer that is not
    /// WeCom's JSON, or has no msgid, leaves the call in doubt instead.
    static func refusal(_ e: WeChatAPIClient.APIError) -> Bool { !tryLater(e) && Int(e.code) != nil }

    /// A task a crashed process may have created: a corp group message since the claim with the
    /// same text and attachment count, sent by the owner, that the campaign does not know yet.
    func findCreated(_ task: WeComGroupTask, text: String?, attachments: Int, since: Int64, known: Set<String>) async throws -> String? {
        let messages = try await api.groupMessages(account: task.account, fromSeconds: since / 1000 - 60, toSeconds: clock() / 1000 + 60)
        for m in messages where !known.contains(m.msgId) && (m.text ?? "") == (text ?? "") && m.attachments == attachments {
            if try await api.groupTaskSenders(account: task.account, msgId: m.msgId).contains(task.owner) { return m.msgId }
        }
        return nil
    }

    /// Reads a task's results and records them; the next poll is set unless every recipient is final.
    func poll(_ campaign: String, task id: String) async throws {
        guard var task = try await store.task(campaign, id: id), task.state == .submitted, let msgId = task.msgId else { return }
        let statuses = try await api.groupSendResults(account: task.account, msgId: msgId, sender: task.owner)
        var results = WeComGroupTask.Results()
        for s in statuses {
            switch s.status {
            case 1: results.sent += 1
            case 2: results.notFriend += 1
            case 3: results.alreadyReceived += 1
            default: results.unsent += 1
            }
        }
        let now = clock()
        task.results = results
        task.polledAt = now
        try await store.results(campaign, task, statuses: statuses, nextPollAtMs: task.nextPoll(nowMs: now, firstAfterMs: firstPollMs))
    }
}
