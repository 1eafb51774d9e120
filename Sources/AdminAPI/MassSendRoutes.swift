import Campaigns
import Foundation
import GatewayCore
import HTTPAPI
import Hummingbird
import Ingress
import Outbound
import Store

/// `/api/v1/accounts/{id}/mass-sends`: a mass send to the followers WeChat holds under one of our tags
/// (pushed first with `POST .../tags/{tag}/push`), for subscription accounts, which have no template
/// messages. The account's quota (`massSend` in the config: WeChat allows a service account 4 a month,
/// a subscription account 1 a day) is taken atomically before WeChat is called, and given back when
/// WeChat refuses for another reason. MASSSENDJOBFINISH fills in the outcome; a send made for a
/// campaign shows in its report.
struct MassSendRoutes {
    let config: GatewayConfig
    let store: MassSendStore
    let campaigns: CampaignStoreLookup
    let wechat: any WeChatSurfaces
    let clock: @Sendable () -> Int64

    struct Body: Decodable {
        let tag: String
        let content: MassSend.Content
        let campaign: String?
    }

    struct Quota: Encodable {
        let period: String
        let limit: Int
        let used: Int
        let resetsAt: String
    }

    struct View: Encodable {
        let msgId: String
        let tag: String
        let type: String
        let campaign: String?
        let status: String
        let sandbox: Bool
        let createdAt: String
        let createdBy: String
        let total: Int?
        let filtered: Int?
        let sent: Int?
        let errors: Int?
        let finishedAt: String?

        init(_ j: MassSendJob) {
            msgId = j.msgId
            tag = j.tag
            type = j.type
            campaign = j.campaign
            status = j.status
            sandbox = j.sandbox
            createdAt = JSONResponse.isoTime(j.createdAt)
            createdBy = j.createdBy
            total = j.total
            filtered = j.filtered
            sent = j.sent
            errors = j.errors
            finishedAt = j.finishedAt.map(JSONResponse.isoTime)
        }
    }

    struct Created: Encodable {
        let massSend: View
        let quota: Quota
    }

    struct List: Encodable {
        let account: String
        let quota: Quota
        let massSends: [View]
    }

    func quota(_ account: Account, now: Int64) async throws -> Quota {
        let q = account.massSend
        return Quota(
            period: q.period.rawValue, limit: q.limit, used: try await store.used(account: account.id, quota: q, nowMs: now),
            resetsAt: JSONResponse.isoTime(q.window(nowMs: now).endsAtMs))
    }

    func register<Context: RequestContext>(on group: DeclaredRoutes<Context>) {
        group.get("/accounts/:id/mass-sends", .channelsRead) { _, context in
            let account = try WeChatFailure.account(config, context, platform: .wechat)
            return try await storage {
                let now = clock()
                return try JSONResponse.encoded(
                    List(account: account.id, quota: try await quota(account, now: now), massSends: try await store.jobs(account: account.id).map(View.init)))
            }
        }
        group.post("/accounts/:id/mass-sends", .channelsWrite) { request, context in
            let account = try WeChatFailure.account(config, context, platform: .wechat)
            let body = try await request.decodeJSON(Body.self, maxBytes: 16_384)
            guard TagName.isValid(body.tag) else { throw APIError.badRequest("tag: \(TagName.rule)", code: "invalid_tag") }
            if let problem = body.content.problem { throw APIError.badRequest(problem, code: "invalid_content") }
            return try await storage {
                if let c = body.campaign, !(try await campaigns.exists(c)) { throw APIError.badRequest("campaign \(c) does not exist", code: "unknown_campaign") }
                guard let tagId = try await store.wechatTagId(account: account.id, tag: body.tag) else {
                    throw APIError(.conflict, "tag_not_pushed", "tag \(body.tag) is not on WeChat yet: push it first (POST /api/v1/accounts/\(account.id)/tags/\(body.tag)/push)")
                }
                let now = clock()
                guard try await store.takeQuota(account: account.id, quota: account.massSend, nowMs: now) != nil else {
                    let q = try await quota(account, now: now)
                    var e = APIError(.tooManyRequests, "mass_quota_spent", "account \(account.id) has used its \(q.limit) mass sends this \(q.period); the next period starts \(q.resetsAt)")
                    e.headers[.retryAfter] = String(max(1, (account.massSend.window(nowMs: now).endsAtMs - now) / 1000))
                    throw e
                }
                let clientMsgId = "mass-" + ULID.make(milliseconds: now)
                let sent: (msgId: String, msgDataId: String?)
                do {
                    sent = try await wechat.massSend(account: account.id, body: MassSend.body(tagId: tagId, content: body.content, clientMsgId: clientMsgId))
                } catch {
                    // WeChat's own quota refusal keeps the slot taken; anything else gives it back.
                    if (error as? WeChatAPIClient.APIError)?.isQuota != true { try? await store.returnQuota(account: account.id, quota: account.massSend, nowMs: now) }
                    throw WeChatFailure.apiError(error, account: account.id)
                }
                let job = MassSendJob(
                    msgId: sent.msgId, msgDataId: sent.msgDataId, account: account.id, tag: body.tag, tagId: tagId, type: Self.type(body.content),
                    campaign: body.campaign, createdAt: now, createdBy: Principal.current?.actor ?? "", sandbox: wechat.isSandbox)
                try await store.record(job)
                AuditNote.target(sent.msgId)
                return try JSONResponse.encoded(Created(massSend: View(job), quota: try await quota(account, now: now)), status: .accepted)
            }
        }
    }

    static func type(_ c: MassSend.Content) -> String {
        switch c {
        case .text: "text"
        case .images: "image"
        case .mpnews: "mpnews"
        }
    }
}

/// Whether a campaign exists (a mass send may name the campaign whose report shows it).
struct CampaignStoreLookup: Sendable {
    let store: CampaignStore
    func exists(_ id: String) async throws -> Bool { ULID.isValid(id) ? try await store.get(id) != nil : false }
}
