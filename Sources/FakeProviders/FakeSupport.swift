import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers

/// What a fake provider accepted, for tests to count (at-most-once is checked here, at the far end).
public struct FakeDelivery: Sendable, Equatable {
    public let provider: String
    public let to: String
    /// Our message id as the request carried it (client_msg_id, OutId, custom_args), when it did.
    public let messageId: String?
    public let providerId: String
    /// The parsed request body (JSON, or form fields as a JSON object).
    public let body: [String: String]
    /// When the fake took it (wall-clock ms).
    public let atMs: Int64
}

/// State shared by the fakes on one server: deliveries, injected answers, call counts, outages.
public final class FakeLedger: Sendable {
    /// A provider outage, for drills: `error` answers every call 503 with WeChat's "system error"
    /// body; `hang` takes the message (it is delivered) and then answers nothing until the outage ends,
    /// the worst case for at-most-once: the caller cannot know its message went.
    public enum Outage: String, Sendable { case none, error, hang }

    private struct State {
        var deliveries: [FakeDelivery] = []
        var injected: [String: [FakeAnswer]] = [:]
        var calls: [String: Int] = [:]
        var sequence = 0
        var outage = Outage.none
        var refusals: [String: [String: FakeAnswer]] = [:]
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    public var deliveries: [FakeDelivery] { state.withLockedValue { $0.deliveries } }

    public func deliveries(_ provider: String) -> [FakeDelivery] { deliveries.filter { $0.provider == provider } }

    /// Calls made to an operation (e.g. "wechat.template", "wechat.token"), failed ones included.
    public func calls(_ operation: String) -> Int { state.withLockedValue { $0.calls[operation] ?? 0 } }

    public var allCalls: [String: Int] { state.withLockedValue { $0.calls } }

    /// Counts something a fake did (e.g. "wechat.template.duplicate") next to the calls.
    func count(_ what: String) { state.withLockedValue { $0.calls[what, default: 0] += 1 } }

    public var outage: Outage {
        get { state.withLockedValue { $0.outage } }
        set { state.withLockedValue { $0.outage = newValue } }
    }

    /// During a `hang` outage, holds the answer to a call the fake already acted on (at most 10 minutes).
    func holdWhileHanging() async {
        // `while`, not `for ... where`: the outage is read (under the lock) once per wait, not 6,000 times per call.
        var waited = 0
        while outage == .hang, waited < 6000 {
            waited += 1
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    /// The next calls to `operation` get these answers, in order, before normal service resumes.
    public func inject(_ operation: String, _ answers: FakeAnswer...) {
        state.withLockedValue { $0.injected[operation, default: []].append(contentsOf: answers) }
    }

    /// Makes an operation refuse one address every time, as the real provider does for a recipient
    /// reason: WeChat 43004 for a follower who unsubscribed, Twilio 21610 for a number that replied STOP.
    public func refuse(_ operation: String, to address: String, _ answer: FakeAnswer) {
        state.withLockedValue { $0.refusals[operation, default: [:]][address] = answer }
    }

    /// The refusal set for an address, if any (the fakes ask once the request is otherwise valid).
    func refusal(_ operation: String, to address: String) -> FakeAnswer? {
        state.withLockedValue { $0.refusals[operation]?[address] }
    }

    func begin(_ operation: String) -> FakeAnswer? {
        state.withLockedValue { s in
            s.calls[operation, default: 0] += 1
            if s.outage == .error { return FakeAnswer(status: 503, json: #"{"errcode":-1,"errmsg":"system error"}"#) }
            guard var queue = s.injected[operation], !queue.isEmpty else { return nil }
            let answer = queue.removeFirst()
            s.injected[operation] = queue
            return answer
        }
    }

    func deliver(_ provider: String, to: String, messageId: String?, body: [String: String], makeId: (Int) -> String) -> String {
        state.withLockedValue { s in
            s.sequence += 1
            let id = makeId(s.sequence)
            let at = Int64(Date().timeIntervalSince1970 * 1000)
            s.deliveries.append(FakeDelivery(provider: provider, to: to, messageId: messageId, providerId: id, body: body, atMs: at))
            return id
        }
    }
}

/// An answer a test forces on a fake: status, JSON body, headers.
public struct FakeAnswer: Sendable, Error {
    public let status: Int
    public let json: String
    public let headers: [String: String]

    public init(status: Int = 200, json: String, headers: [String: String] = [:]) {
        self.status = status
        self.json = json
        self.headers = headers
    }

    var response: Response {
        var fields = HTTPFields()
        fields[.contentType] = "application/json; charset=utf-8"
        for (name, value) in headers {
            if let n = HTTPField.Name(name) { fields[n] = value }
        }
        return Response(status: .init(code: status), headers: fields, body: .init(byteBuffer: ByteBuffer(string: json)))
    }
}

func jsonResponse(_ object: [String: Any], status: Int = 200, headers: [String: String] = [:]) -> Response {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
    return FakeAnswer(status: status, json: String(decoding: data, as: UTF8.self), headers: headers).response
}

func jsonObject(_ buffer: ByteBuffer) -> [String: Any]? {
    (try? JSONSerialization.jsonObject(with: Data(buffer: buffer))) as? [String: Any]
}

func formFields(_ text: String) -> [String: String] { FormEncoding.decode(text) }

func flatten(_ object: [String: Any]) -> [String: String] {
    object.mapValues { v in
        if let s = v as? String { return s }
        if let data = try? JSONSerialization.data(withJSONObject: v, options: [.sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes]) {
            return String(decoding: data, as: UTF8.self)
        }
        return "\(v)"
    }
}
