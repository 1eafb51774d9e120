import GatewayCore
import Hummingbird
import NIOCore
import Store

/// `GET|POST /u/{token}`: signed one-click unsubscribe. GET shows a page with a button (mail scanners
/// fetch links, so a GET never unsubscribes); POST, from that button or a mail client's RFC 8058
/// one-click, records the opt-out at once. A forged or damaged token gets 404 and changes nothing.
public struct UnsubscribeRoutes: Sendable {
    let links: UnsubscribeLinks
    let store: CustomerStore
    let clock: @Sendable () -> Int64

    public init(links: UnsubscribeLinks, store: CustomerStore, clock: @escaping @Sendable () -> Int64) {
        self.links = links
        self.store = store
        self.clock = clock
    }

    public func register<Context: RequestContext>(on router: DeclaredRoutes<Context>) {
        router.get("/u/:token", .public) { _, context -> Response in
            guard let (channel, address) = links.verify(try context.parameters.require("token")) else { return Self.page(.notFound, Self.invalid) }
            return Self.page(.ok, """
                <h1>Unsubscribe</h1><p>Stop \(channel == "sms" ? "text messages" : "marketing email") to \(XMLText.escape(Self.mask(address)))?</p>
                <form method="post"><button type="submit">Unsubscribe</button></form>
                """)
        }
        router.post("/u/:token", .public) { request, context -> Response in
            _ = try? await request.body.collect(upTo: 4096)
            guard let (channel, address) = links.verify(try context.parameters.require("token")) else { return Self.page(.notFound, Self.invalid) }
            do {
                try await store.recordOptOut(channel: channel, address: address, state: "unsubscribed", nowMs: clock())
            } catch {
                return Self.page(.serviceUnavailable, "<h1>Please try again</h1><p>We could not record this just now.</p>")
            }
            return Self.page(.ok, "<h1>You are unsubscribed</h1><p>\(XMLText.escape(Self.mask(address))) will get no more of these messages.</p>")
        }
    }

    static let invalid = "<h1>Link not valid</h1><p>This unsubscribe link is incomplete or was changed.</p>"

    static func page(_ status: HTTPResponse.Status, _ body: String) -> Response {
        let html = "<!doctype html><html><head><meta charset=\"utf-8\"><title>Unsubscribe</title></head><body>\(body)</body></html>"
        return Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// a***@example.com: enough to recognise, not enough to read someone's address off a forwarded link.
    static func mask(_ address: String) -> String {
        guard let at = address.firstIndex(of: "@") else { return String(address.prefix(4)) + "***" + String(address.suffix(2)) }
        return String(address.prefix(1)) + "***" + address[at...]
    }
}
