import Foundation
import GatewayCore
import HTTPTransport

/// What one provider call came to.
public enum SendOutcome: Sendable, Equatable {
    /// The provider took the message; its id when the spec says where it is.
    case accepted(providerId: String?)
    case failed(SendFailure)

    /// The provider answered as a working service would (accepted, or refused this message for a
    /// reason of its own): a failing provider's circuit closes on it.
    public var isProviderAnswer: Bool {
        switch self {
        case .accepted: true
        case .failed(let f): [.permanent, .optedOut, .badAddress, .duplicate, .quota, .throttle].contains(f.errorClass) && f.code != "render"
        }
    }
}

public struct SendFailure: Sendable, Equatable, CustomStringConvertible {
    public let errorClass: ErrorClass
    /// The provider's error code (`errcode`, `Code`, Twilio's `code`) or `http <status>` / `smtp <reply>`.
    public let code: String
    public let message: String
    /// From `Retry-After` (seconds or an HTTP date), when the provider sent one.
    public let retryAfterMs: Int64?
    /// The start of the provider's answer, kept with a dead letter.
    public let answer: String
    /// The request went out and no answer came back (a timeout or a broken connection after sending):
    /// the provider may have taken the message. Sent again only inside the provider's own dedup window.
    public let outcomeUnknown: Bool

    public init(
        errorClass: ErrorClass, code: String, message: String, retryAfterMs: Int64? = nil, answer: String = "", outcomeUnknown: Bool = false
    ) {
        self.errorClass = errorClass
        self.code = code
        self.message = message
        self.retryAfterMs = retryAfterMs
        self.answer = answer
        self.outcomeUnknown = outcomeUnknown
    }

    /// A failure that says the provider (or the way to it) is unwell rather than that this message is
    /// wrong: 5xx, "system busy", timeouts, broken connections. Enough of them in a row open the
    /// adapter's circuit (see RateLimiter).
    public var isProviderFailure: Bool { errorClass == .retry && !["token-wait", "sandbox"].contains(code) }

    public var description: String { "\(errorClass.rawValue) \(code): \(message)" }
}

extension ResolvedAdapter {
    /// Reads an HTTP answer by the spec's success test and error rules (first match wins).
    public func classify(_ response: HTTPResponse, nowMs: Int64) -> SendOutcome {
        guard case .http(let http) = renders.kind else {
            return .failed(SendFailure(errorClass: .permanent, code: "spec", message: "not an HTTP adapter"))
        }
        let spec = http.response
        let json = JSONValue.parse(response.body)
        func read(_ ref: FieldRef?) -> String? {
            switch ref {
            case .json(let path): json?.lookup(path)?.scalarText
            case .header(let name): response.header(name)
            case nil: nil
            }
        }
        var ok = spec.successStatus.contains { $0.matches(response.status) }
        if ok, let field = spec.successField {
            if let value = json?.lookup(field)?.scalarText {
                ok = spec.successValues.contains(value)
            } else {
                ok = spec.successWhenMissing
            }
        }
        if ok { return .accepted(providerId: read(spec.providerId)) }

        let code = read(spec.errorCode)
        let errorClass = spec.errors.first { $0.matches(status: response.status, code: code) }?.errorClass ?? spec.otherwise
        if errorClass == .duplicate { return .accepted(providerId: read(spec.providerId)) }
        let answer = String(decoding: response.body.prefix(512), as: UTF8.self)
        return .failed(SendFailure(
            errorClass: errorClass, code: code ?? "http \(response.status)",
            message: read(spec.errorMessage) ?? "HTTP \(response.status)",
            retryAfterMs: response.header("Retry-After").flatMap { Self.retryAfterMs($0, nowMs: nowMs) }, answer: answer))
    }

    /// Maps a failed transfer: SMTP 4xx replies and network trouble are worth retrying, SMTP 5xx are not.
    public static func classify(_ error: TransportError) -> SendFailure {
        switch error.kind {
        case .refused where error.isRecipientRefusal:
            // A hard bounce at SMTP time: a recipient reason (a campaign tries its next channel).
            SendFailure(errorClass: .badAddress, code: "smtp \(error.protocolCode)", message: error.message)
        case .refused where error.protocolCode >= 500:
            SendFailure(errorClass: .permanent, code: "smtp \(error.protocolCode)", message: error.message)
        case .refused:
            SendFailure(errorClass: .retry, code: error.protocolCode > 0 ? "smtp \(error.protocolCode)" : "refused", message: error.message)
        case .timeout: SendFailure(errorClass: .retry, code: "timeout", message: error.message, outcomeUnknown: error.requestSent)
        case .network: SendFailure(errorClass: .retry, code: "network", message: error.message, outcomeUnknown: error.requestSent)
        // The answer was too large: it came back, so the provider answered (we cannot read it).
        case .tooLarge: SendFailure(errorClass: .retry, code: "too-large", message: error.message, outcomeUnknown: true)
        case .cancelled, .shutdown: SendFailure(errorClass: .retry, code: "interrupted", message: error.message, outcomeUnknown: error.requestSent)
        }
    }

    /// `Retry-After: 120` or `Retry-After: Wed, 21 Oct 2015 07:28:00 GMT`, as milliseconds from now.
    static func retryAfterMs(_ value: String, nowMs: Int64) -> Int64? {
        let v = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Double(v), seconds >= 0, seconds.isFinite { return Int64(min(seconds, 86_400) * 1000) }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = f.date(from: v) else { return nil }
        return max(0, Int64(date.timeIntervalSince1970 * 1000) - nowMs)
    }
}
