/// What an inbound SMS reply asks for: the opt-out and opt-in keywords of carriers and providers
/// (Twilio's STOP family, China's TD / 退订), matched on the whole message, case and spaces ignored.
public enum SMSReplyKeywords {
    public enum Intent: Sendable, Equatable {
        /// Opt out. `providerConfirms`: the provider sends its own confirmation (Twilio's
        /// Advanced Opt-Out for its keywords); otherwise we answer with one.
        case optOut(providerConfirms: Bool)
        case optIn(providerConfirms: Bool)
    }

    static let twilioStop: Set<String> = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"]
    static let otherStop: Set<String> = ["TD", "T", "N", "退订", "取消订阅", "退定"]
    static let twilioStart: Set<String> = ["START", "UNSTOP", "YES"]
    static let otherStart: Set<String> = ["订阅", "恢复订阅"]

    public static func intent(_ body: String) -> Intent? {
        let word = body.trimmingCharacters(in: .whitespacesAndNewlines).uppercased().filter { !$0.isWhitespace && $0 != "." && $0 != "!" && $0 != "。" }
        if twilioStop.contains(word) { return .optOut(providerConfirms: true) }
        if otherStop.contains(word) { return .optOut(providerConfirms: false) }
        if twilioStart.contains(word) { return .optIn(providerConfirms: true) }
        if otherStart.contains(word) { return .optIn(providerConfirms: false) }
        return nil
    }
}
