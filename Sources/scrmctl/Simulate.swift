import ArgumentParser
import Foundation
import GatewayCore
import GatewayCrypto
import HTTPTransport

/// Sends correctly signed (and, with --aes, encrypted) webhooks to a running gateway, as WeChat would.
struct Simulate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send a signed platform webhook to the gateway, as WeChat or WeCom would.",
        discussion: """
            Events: text, subscribe, unsubscribe, scan, click, view, location, handshake, \
            external-contact-add, external-contact-del.
            The account's token, appId and EncodingAESKey are read from the gateway config.
            Example: scrmctl simulate subscribe --account demo --openid oFAN001 --scene expo2026
            """
    )

    enum Event: String, ExpressibleByArgument, CaseIterable {
        case text, subscribe, unsubscribe, scan, click, view, location, handshake
        case externalContactAdd = "external-contact-add"
        case externalContactDel = "external-contact-del"
    }

    @Argument(help: "The webhook to send.") var event: Event
    @Option(help: "Account id from the config.") var account = "demo"
    @Option(help: "Follower openid (WeCom: the external contact id).") var openid = "oSIMULATED0001"
    @Option(help: "Text content for 'text'.") var text = "hello"
    @Option(help: "QR scene for 'subscribe' and 'scan'.") var scene: String?
    @Option(help: "Menu key for 'click', URL for 'view'.") var key: String?
    @Option(help: "UnionId to include.") var unionid: String?
    @Option(help: "WeCom: the member (UserID) for external-contact-add/del.") var user = "staff01"
    @Option(help: "WeCom: the contact way's state for external-contact-add.") var state: String?
    @Option(help: "WeCom: the WelcomeCode for external-contact-add (the gateway sends the welcome with it).") var welcomeCode: String?
    @Option(help: "MsgId for 'text' (default: random). Reuse one to simulate a retry.") var msgId: String?
    @Flag(help: "Encrypt the request (safe mode).") var aes = false
    @Option(help: "Gateway config to read the account from.") var config = ProcessInfo.processInfo.environment["SCRM_CONFIG"] ?? "config/gateway.yaml"
    @OptionGroup var gateway: GatewayOptions

    func run() async throws {
        let cfg: GatewayConfig
        do { cfg = try ConfigLoader().load(path: config) } catch { throw ValidationError("\(error)") }
        guard let acct = cfg.account(account) else {
            throw ValidationError("no account \(account) in \(config) (have: \(cfg.accounts.map(\.id).joined(separator: ", ")))")
        }
        let builder = CallbackBuilder(account: acct)
        let now = Int64(Date().timeIntervalSince1970)
        let nonce = SecureRandom.alphanumeric(10)
        let request: CallbackBuilder.Request
        if event == .handshake {
            request = try builder.handshake(echo: "scrmctl-\(nonce)", timestamp: now, nonce: nonce)
        } else {
            request = try builder.post(xml: xml(acct, now: now), timestamp: now, nonce: nonce, encrypt: aes)
        }
        let response = try await gateway.send(
            HTTPRequest(method: event == .handshake ? "GET" : "POST", url: gateway.baseURL + request.pathAndQuery, headers: [("Content-Type", "text/xml")], body: Array(request.body.utf8)))
        print("HTTP \(response.status)")
        var reply = response.text
        if let cipher = acct.encodingAESKey.flatMap({ try? WeChatCipher(encodingAESKey: $0, appId: acct.appId) }),
            let envelope = try? InboundMessage.parse(response.body), let encrypt = envelope.encrypt
        {
            reply = (try? String(decoding: cipher.decrypt(base64: encrypt), as: UTF8.self)).map { "(decrypted) " + $0 } ?? reply
        }
        print(reply)
        if !(200..<300).contains(response.status) { throw ExitCode(1) }
    }

    func xml(_ acct: Account, now: Int64) -> String {
        let to = acct.platform == .wecom ? acct.appId : "gh_\(acct.id)"
        let extra = unionid.map { "<UnionId>\(ReplyXML.cdata($0))</UnionId>" } ?? ""
        switch event {
        case .text:
            return SampleCallbacks.text(to: to, from: openid, content: text, msgId: msgId ?? String(UInt64.random(in: 1_000_000_000...9_999_999_999)), createTime: now)
                .replacingOccurrences(of: "</xml>", with: extra + "</xml>")
        case .subscribe: return SampleCallbacks.event(to: to, from: openid, event: "subscribe", eventKey: scene.map { "qrscene_\($0)" } ?? "", createTime: now, extra: extra)
        case .unsubscribe: return SampleCallbacks.event(to: to, from: openid, event: "unsubscribe", createTime: now, extra: extra)
        case .scan: return SampleCallbacks.event(to: to, from: openid, event: "SCAN", eventKey: scene ?? "", createTime: now, extra: extra)
        case .click: return SampleCallbacks.event(to: to, from: openid, event: "CLICK", eventKey: key ?? "MENU_1", createTime: now, extra: extra)
        case .view: return SampleCallbacks.event(to: to, from: openid, event: "VIEW", eventKey: key ?? "https://example.com/", createTime: now, extra: extra)
        case .location:
            return SampleCallbacks.event(
                to: to, from: openid, event: "LOCATION", createTime: now,
                extra: "<Latitude>31.2304</Latitude><Longitude>121.4737</Longitude><Precision>65.0</Precision>" + extra)
        case .externalContactAdd:
            return SampleCallbacks.externalContact(
                corpId: acct.appId, change: "add_external_contact", userId: user, externalUserId: openid, createTime: now, state: state, welcomeCode: welcomeCode)
        case .externalContactDel:
            return SampleCallbacks.externalContact(corpId: acct.appId, change: "del_follow_user", userId: user, externalUserId: openid, createTime: now)
        case .handshake: return ""
        }
    }
}
