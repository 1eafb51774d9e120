/// Where a customer goes in a journey, decided without I/O: which interactions match a trigger or an
/// exit, and the next step to run and when, with the timing rules applied (a wait whose moment has
/// passed is skipped together with the send after it, unless that send says `late: send`).
extension JourneyPlan {
    /// Whether an interaction (`stream:inbound` type and payload) matches. A bare event name is a
    /// WeChat event (`subscribe` matches `event.subscribe`, `click` matches `event.CLICK`, ignoring
    /// case); a dotted one matches the type exactly (`web.register`, `message.click`). `scene` matches
    /// the QR scene (`qrscene_<scene>` on subscribe, `<scene>` on SCAN), `key` the event key.
    public static func matches(_ m: JourneyDefinition.EventMatch, type: String, payload: [String: String]) -> Bool {
        if m.event.contains(".") {
            guard type == m.event else { return false }
        } else {
            guard type.hasPrefix("event."), type.dropFirst(6).lowercased() == m.event.lowercased() else { return false }
        }
        let eventKey = payload["EventKey"] ?? ""
        if let scene = m.scene, eventKey != scene, eventKey != "qrscene_" + scene { return false }
        if let key = m.key, eventKey != key { return false }
        return true
    }

    /// The trigger as an event match, when it is an event trigger.
    public var triggerEvent: JourneyDefinition.EventMatch? {
        definition.trigger.event.map { JourneyDefinition.EventMatch(event: $0, scene: definition.trigger.scene, key: definition.trigger.key) }
    }

    /// A customer's next position: the step to run (nil: the journey is over) and when it is due.
    /// `skipped` lists the steps passed over on the way, with why. `late`: a wait was passed over
    /// because its moment had gone, and no wait has been waited for since: sends are skipped (unless
    /// they say `late: send`) until the next wait, also those a branch leads to.
    public struct Move: Sendable, Equatable {
        public var step: Int?
        public var dueAt: Int64
        public var late = false
        public var skipped: [Skip] = []

        public init(step: Int?, dueAt: Int64, late: Bool = false, skipped: [Skip] = []) {
            self.step = step
            self.dueAt = dueAt
            self.late = late
            self.skipped = skipped
        }

        public struct Skip: Sendable, Equatable {
            public let step: Int
            public let reason: String
        }
    }

    /// The first step, entered at `now`.
    public func start(now: Int64, anchorMs: Int64?) -> Move { enter(nodes.isEmpty ? nil : 0, now: now, anchorMs: anchorMs, late: false) }

    /// After step `i` completed at `now`: its successor (a branch's `taken` one), entered. `late`: the
    /// customer's current `Move.late`.
    public func after(_ i: Int, taken: Int? = nil, now: Int64, anchorMs: Int64?, late: Bool = false) -> Move {
        enter(taken ?? nodes[i].successors.first, now: now, anchorMs: anchorMs, late: late)
    }

    /// Enters step `first`: a wait is due at its moment; a wait whose moment has passed is skipped and
    /// makes the customer late; a send while late is skipped unless it says `late: send`; anything
    /// else is due now.
    func enter(_ first: Int?, now: Int64, anchorMs: Int64?, late: Bool) -> Move {
        var move = Move(step: first, dueAt: now, late: late)
        // Validation leaves no loop without a wait; skipped waits could still go round one, so bound it.
        for _ in 0..<(2 * nodes.count + 2) {
            guard let j = move.step else { return move }
            let node = nodes[j]
            if let wait = node.wait {
                let moment: Int64?
                switch wait {
                case .duration(let ms): moment = now + ms
                case .anchor(let offset): moment = anchorMs.map { $0 + offset }
                }
                if let moment, moment > now {
                    move.dueAt = moment
                    move.late = false
                    return move
                }
                move.skipped.append(.init(step: j, reason: moment == nil ? "no_anchor" : "late"))
                move.late = true
            } else if node.kind == .send, move.late, definition.steps[j].late != "send" {
                move.skipped.append(.init(step: j, reason: "late"))
            } else {
                return move
            }
            move.step = node.successors.first
        }
        move.step = nil
        return move
    }

    /// The moment of the first wait after step `i` (through branches, the earliest), from `now`: a send
    /// deferred by quiet hours must go before it, or not at all. Nil when no wait follows.
    public func nextWaitMoment(after i: Int, now: Int64, anchorMs: Int64?) -> Int64? {
        var best: Int64?
        var seen = Set<Int>()
        var queue = nodes[i].successors
        while let j = queue.popLast() {
            guard seen.insert(j).inserted else { continue }
            if let wait = nodes[j].wait {
                let moment: Int64? =
                    switch wait {
                    case .duration(let ms): now + ms
                    case .anchor(let offset): anchorMs.map { $0 + offset }
                    }
                // A wait already past is skipped; the one after it bounds the send.
                if let moment, moment > now {
                    best = min(best ?? moment, moment)
                    continue
                }
            }
            queue += nodes[j].successors
        }
        return best
    }
}
