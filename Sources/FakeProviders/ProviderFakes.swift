import Foundation
import Hummingbird

/// Every provider fake on one loopback server (their paths do not overlap), with fixed test
/// credentials. Point the specs' `SCRM_*_API_BASE` at `server.baseURL` and use `environment`.
public struct ProviderFakes: Sendable {
    public static let wechatAppId = "wxfake0000000001"
    public static let wechatSecret = "fake-app-secret"

    public let server: FakeServer
    public let ledger: FakeLedger
    public let wechat: WeChatFake
    public let wecom: WeComFake
    public let hubspot: HubSpotFake
    public let marketo: MarketoFake
    public let eloqua: EloquaFake
    public let douyin: DouyinFake
    /// The Douyin fake's app and enterprise account (a test's `douyin.accounts` entry uses them).
    public static let douyinClientKey = "awr8bfr64vxgk036"
    public static let douyinRefreshToken = "rft.fake-douyin-refresh-token"
    public static let douyinAccountOpenId = "_000bfeGRgbkwDMMksxyg4auR"

    public var baseURL: String { server.baseURL }

    /// The environment the shipped specs need to talk to these fakes.
    public var environment: [String: String] {
        [
            "SCRM_WECHAT_API_BASE": baseURL, "SCRM_WECOM_API_BASE": baseURL, "SCRM_TWILIO_API_BASE": baseURL, "SCRM_ALIYUN_SMS_API_BASE": baseURL, "SCRM_SENDGRID_API_BASE": baseURL,
            "TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000fake", "TWILIO_AUTH_TOKEN": "fake-twilio-token", "TWILIO_FROM": "+15017122661",
            "ALIYUN_ACCESS_KEY_ID": "LTAIfake", "ALIYUN_ACCESS_KEY_SECRET": "fake-aliyun-secret", "ALIYUN_SMS_SIGN_NAME": "示例商城",
            "SENDGRID_API_KEY": "SG.fake-key",
            "SCRM_HUBSPOT_API_BASE": baseURL, "HUBSPOT_TOKEN": "pat-na1-fake", "HUBSPOT_CLIENT_SECRET": "fake-hubspot-app-secret",
            "SCRM_MARKETO_API_BASE": baseURL, "MARKETO_CLIENT_ID": "fake-marketo-client", "MARKETO_CLIENT_SECRET": "fake-marketo-secret",
            "SCRM_DOUYIN_API_BASE": baseURL, "SCRM_ELOQUA_LOGIN_URL": baseURL, "ELOQUA_SITE": "FakeCorp", "ELOQUA_USER": "fake.api", "ELOQUA_PASSWORD": "fake-eloqua-password",
        ]
    }

    /// Starts the fakes. `twilioPerSecond` makes the Twilio fake answer 429 past that many calls a second;
    /// `twilioDelayMs` makes each of its answers take that long.
    /// `wechatPageSize`: followers per `user/get` page (WeChat's is 10,000). `hubspotLimit` calls per
    /// `hubspotWindowMs` is the HubSpot fake's rolling limit (HubSpot's: 100 per 10 s); `marketoLimit`
    /// calls per 20 s the Marketo fake's (Marketo's: 100). `douyinRefreshExpiresIn`: what the Douyin fake
    /// says is left of its refresh token (30 days).
    public static func start(
        port: Int = 0, twilioPerSecond: Int? = nil, twilioDelayMs: Int = 0, wechatPageSize: Int = 10_000, hubspotLimit: Int = 100,
        hubspotWindowMs: Int = 10_000, marketoLimit: Int = 100, douyinRefreshExpiresIn: Int = 2_592_000
    ) async throws -> ProviderFakes {
        let ledger = FakeLedger()
        let wechat = WeChatFake(ledger: ledger, pageSize: wechatPageSize)
        wechat.addAccount(appId: wechatAppId, secret: wechatSecret)
        let router = Router()
        wechat.add(to: router)
        let wecom = WeComFake(ledger: ledger)
        wecom.add(to: router)
        TwilioFake(ledger: ledger, accountSid: "AC00000000000000000000000000000fake", authToken: "fake-twilio-token", perSecond: twilioPerSecond, delayMs: twilioDelayMs)
            .add(to: router)
        AliyunSMSFake(ledger: ledger, accessKeyId: "LTAIfake", accessKeySecret: "fake-aliyun-secret").add(to: router)
        SendGridFake(ledger: ledger, apiKey: "SG.fake-key").add(to: router)
        let hubspot = HubSpotFake(token: "pat-na1-fake", limit: hubspotLimit, windowMs: hubspotWindowMs)
        hubspot.add(to: router)
        let marketo = MarketoFake(clientId: "fake-marketo-client", clientSecret: "fake-marketo-secret", rateLimit: marketoLimit)
        marketo.add(to: router)
        let eloqua = EloquaFake(
            site: "FakeCorp", user: "fake.api", password: "fake-eloqua-password", customFields: ["C_SCRM_Id1", "C_SCRM_Score1", "C_SCRM_Stage1", "C_SCRM_Tags1"])
        eloqua.add(to: router)
        let douyin = DouyinFake(
            clientKey: douyinClientKey, refreshToken: douyinRefreshToken, accountOpenId: douyinAccountOpenId, refreshExpiresIn: douyinRefreshExpiresIn)
        douyin.add(to: router)
        TransportRoutes.add(to: router)
        // What a separate process (a benchmark) needs to check at-most-once: deliveries and distinct
        // recipients per provider.
        router.get("/_fakes/summary") { [ledger] _, _ -> Response in
            var byProvider = [String: (count: Int, recipients: Set<String>)]()
            for d in ledger.deliveries {
                byProvider[d.provider, default: (0, [])].count += 1
                byProvider[d.provider]!.recipients.insert(d.to)
            }
            let object = byProvider.mapValues { ["deliveries": $0.count, "recipients": $0.recipients.count] }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        // Drills: `POST /_fakes/outage?mode=error|hang|none` starts or ends an outage of every provider;
        // `GET /_fakes/calls` counts calls per operation (and WeChat's duplicate answers).
        router.post("/_fakes/outage") { [ledger] request, _ -> Response in
            guard let mode = request.uri.queryParameters.get("mode").flatMap({ FakeLedger.Outage(rawValue: String($0)) }) else {
                return jsonResponse(["error": "mode must be error, hang or none"], status: 400)
            }
            ledger.outage = mode
            return jsonResponse(["outage": mode.rawValue])
        }
        router.get("/_fakes/calls") { [ledger] _, _ -> Response in jsonResponse(ledger.allCalls) }
        // When each delivery of a provider was taken (ms), for rate checks across processes.
        router.get("/_fakes/timeline") { [ledger] request, _ -> Response in
            let provider = request.uri.queryParameters.get("provider").map { String($0) } ?? ""
            return jsonResponse(["at": ledger.deliveries(provider).map(\.atMs)])
        }
        // Every WeChat access token issued so far expires now.
        router.post("/_fakes/wechat/expire-tokens") { [wechat] _, _ -> Response in
            wechat.expireTokens()
            return jsonResponse(["expired": true])
        }
        return ProviderFakes(server: try await FakeServer.start(router, port: port), ledger: ledger, wechat: wechat, wecom: wecom, hubspot: hubspot, marketo: marketo, eloqua: eloqua, douyin: douyin)
    }

    public func stop() async { await server.stop() }
}
