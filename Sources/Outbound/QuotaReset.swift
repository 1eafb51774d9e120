import Store

extension RateLimiter {
    /// When a spent quota comes back: WeChat's daily quotas at the next midnight in Beijing; anything
    /// else (an SMS balance, an ESP plan) is probed again after an hour.
    public static func quotaResetMs(channel: AdapterSpec.Channel, nowMs: Int64) -> Int64 {
        guard channel == .wechat else { return nowMs + 3_600_000 }
        let beijing = nowMs + 8 * 3_600_000
        return (beijing / 86_400_000 + 1) * 86_400_000 - 8 * 3_600_000
    }
}
