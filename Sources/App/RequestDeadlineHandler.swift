import NIOCore
import NIOHTTPTypes

/// Closes a connection whose next request has not fully arrived (head and body) within `timeout` of
/// the connection opening or the previous response ending. A slow-loris client (headers a byte at a
/// time) or a trickled body holds a connection for that long at most, and an idle keep-alive
/// connection is closed after it too. A request being answered is never cut: the clock stops when the
/// request has been read and starts again when its response has been written.
///
/// Uploads to a `streamingPaths` path (a customer import of a gigabyte) may take longer, as long as
/// they keep coming: every `progressBytes` received restarts the clock, so a stalled or trickled
/// upload is still closed after `timeout`.
final class RequestDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let timeout: TimeAmount
    let streamingPaths: [String]
    static let progressBytes = 65_536
    private var deadline: Scheduled<Void>?
    private var responsesOwed = 0
    /// Bytes of a streaming upload since the clock last restarted; nil = not a streaming upload.
    private var streamed: Int?

    init(timeout: TimeAmount, streamingPaths: [String] = []) {
        self.timeout = timeout
        self.streamingPaths = streamingPaths
    }

    func handlerAdded(context: ChannelHandlerContext) { if context.channel.isActive { arm(context) } }
    func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }
    func handlerRemoved(context: ChannelHandlerContext) { disarm() }
    func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            let path = head.path ?? ""
            streamed = streamingPaths.contains { path == $0 || path.hasPrefix($0 + "?") } ? 0 : nil
        case .body(let buffer):
            if let n = streamed {
                let total = n + buffer.readableBytes
                if total >= Self.progressBytes {
                    streamed = 0
                    arm(context)
                } else {
                    streamed = total
                }
            }
        case .end:
            streamed = nil
            responsesOwed += 1
            disarm()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            responsesOwed = max(0, responsesOwed - 1)
            if responsesOwed == 0 { arm(context) }
        }
        context.write(data, promise: promise)
    }

    private func arm(_ context: ChannelHandlerContext) {
        disarm()
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    private func disarm() {
        deadline?.cancel()
        deadline = nil
    }
}
