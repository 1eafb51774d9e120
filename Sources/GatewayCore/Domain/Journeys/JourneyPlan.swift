/// A journey definition checked for its shape, with its times and graph worked out: every problem is
/// a `JourneyError` naming the field, so a bad definition is refused whole and nothing is stored.
/// Channel content (adapters, accounts, templates) is checked where the adapters are known, as
/// campaign content is.
public struct JourneyPlan: Sendable {
    public enum Kind: String, Sendable { case send, wait, branch, tag, update, crm, exit }

    public enum Anchor: Sendable, Equatable {
        /// One moment for everyone (ms since the epoch).
        case fixed(Int64)
        /// A datetime attribute of the customer (`profile.expo_date`).
        case attribute(String)
    }

    public enum Reentry: Sendable, Equatable {
        case never, always
        /// Again once this long has passed since the previous enrolment (ms).
        case after(Int64)
    }

    public enum WaitTime: Sendable, Equatable {
        /// This long after reaching the wait (ms).
        case duration(Int64)
        /// The anchor plus this offset (ms, negative = before).
        case anchor(offsetMs: Int64)
    }

    public struct Node: Sendable, Equatable {
        public let id: String
        public let kind: Kind
        /// Where the customer goes next (none after an exit or the last step); a branch has two.
        public let successors: [Int]
        public let wait: WaitTime?
    }

    public let definition: JourneyDefinition
    public let nodes: [Node]
    public let index: [String: Int]
    public let anchor: Anchor?
    public let reentry: Reentry

    public init(_ d: JourneyDefinition, attributes: CustomerAttributes) throws {
        definition = d
        guard (1...200).contains(d.name.count) else { throw JourneyError("name", "must be 1 to 200 characters") }
        try Self.checkTrigger(d.trigger)
        anchor = try Self.anchor(d.anchor, attributes: attributes)
        for (i, e) in (d.exitOn ?? []).enumerated() { try Self.checkEvent(e, at: "exitOn[\(i)]") }
        reentry = try Self.reentry(d.reentry)

        guard (1...100).contains(d.steps.count) else { throw JourneyError("steps", "give 1 to 100 steps") }
        var index = [String: Int]()
        for (i, s) in d.steps.enumerated() {
            guard (1...64).contains(s.id.utf8.count), s.id.utf8.allSatisfy(IdentityInput.isTokenByte) else {
                throw JourneyError("steps[\(i)].id", "must be 1 to 64 letters, digits, - or _")
            }
            guard index[s.id] == nil else { throw JourneyError("steps[\(i)].id", "\(s.id) is used twice") }
            index[s.id] = i
        }
        self.index = index
        var nodes = [Node]()
        for (i, s) in d.steps.enumerated() {
            nodes.append(try Self.node(s, at: i, steps: d.steps, index: index, anchor: anchor, attributes: attributes))
        }
        self.nodes = nodes
        if let cycle = Self.cycleWithoutWait(nodes) {
            throw JourneyError("steps", "\(cycle.joined(separator: " -> ")) loops without a wait", code: "journey_cycle")
        }
    }

    // MARK: parts

    static func checkEventName(_ name: String, at path: String) throws {
        guard (1...64).contains(name.utf8.count), name.utf8.allSatisfy({ IdentityInput.isTokenByte($0) || $0 == 0x2E }) else {
            throw JourneyError(path, "must be an interaction type such as subscribe, click or web.register (letters, digits, ., -, _)")
        }
    }

    static func checkEvent(_ e: JourneyDefinition.EventMatch, at path: String) throws {
        try checkEventName(e.event, at: path + ".event")
        for (field, value) in [("scene", e.scene), ("key", e.key)] {
            if let value, !(1...128).contains(value.utf8.count) { throw JourneyError("\(path).\(field)", "must be 1 to 128 bytes") }
        }
    }

    static func checkTrigger(_ t: JourneyDefinition.Trigger) throws {
        let kinds = [t.event != nil, t.tagAdded != nil, t.stage != nil, t.audience != nil].filter { $0 }.count
        guard kinds == 1 else { throw JourneyError("trigger", "give exactly one of event, tagAdded, stage or audience") }
        if let event = t.event {
            try checkEvent(JourneyDefinition.EventMatch(event: event, scene: t.scene, key: t.key), at: "trigger")
        } else if t.scene != nil || t.key != nil {
            throw JourneyError("trigger", "scene and key only go with an event")
        }
        if let tag = t.tagAdded, !TagName.isValid(tag) { throw JourneyError("trigger.tagAdded", "is not a valid tag name") }
        if let stage = t.stage, !(1...64).contains(stage.utf8.count) || !stage.utf8.allSatisfy(IdentityInput.isTokenByte) {
            throw JourneyError("trigger.stage", "must be a stage name such as MQL")
        }
        if let audience = t.audience {
            do { _ = try TagExpression.parse(audience) } catch let e as TagExpression.ParseError {
                throw JourneyError("trigger.audience", e.description, code: "invalid_expression")
            }
        }
    }

    static func anchor(_ text: String?, attributes: CustomerAttributes) throws -> Anchor? {
        guard let text else { return nil }
        if text.hasPrefix("profile.") {
            let name = String(text.dropFirst(8))
            guard let a = attributes.attributes[name] else { throw JourneyError("anchor", "\(text) is not a declared attribute", code: "unknown_attribute") }
            guard a.kind == .datetime else { throw JourneyError("anchor", "\(text) is a \(a.kind.name) attribute, not a datetime") }
            return .attribute(name)
        }
        guard let ms = CampaignDefinition.milliseconds(text) else {
            throw JourneyError("anchor", "must be an ISO 8601 time with offset (2026-12-10T09:00:00+08:00) or profile.<datetime attribute>")
        }
        return .fixed(ms)
    }

    static func reentry(_ text: String?) throws -> Reentry {
        switch text {
        case nil, "never": return .never
        case "always": return .always
        case let t? where t.hasPrefix("after:"):
            let ms = try duration(String(t.dropFirst(6)), at: "reentry")
            guard ms > 0 else { throw JourneyError("reentry", "after: needs a positive duration") }
            return .after(ms)
        default: throw JourneyError("reentry", "must be never, always or after:<ISO 8601 duration>")
        }
    }

    static func duration(_ text: String, at path: String) throws -> Int64 {
        do { return try ISODuration.milliseconds(text) } catch let e as ISODuration.Invalid { throw JourneyError(path, e.description) }
    }

    static func node(
        _ s: JourneyDefinition.Step, at i: Int, steps: [JourneyDefinition.Step], index: [String: Int], anchor: Anchor?, attributes: CustomerAttributes
    ) throws -> Node {
        let path = "steps[\(i)]"
        let kinds: [(Kind, Bool)] = [
            (.send, s.send != nil), (.wait, s.wait != nil), (.branch, s.branch != nil), (.tag, s.tag != nil), (.update, s.update != nil),
            (.crm, s.crm != nil), (.exit, s.exit == true),
        ]
        let present = kinds.filter(\.1).map(\.0)
        guard present.count == 1, let kind = present.first else {
            throw JourneyError(path, "give exactly one of send, wait, branch, tag, update, crm or exit")
        }
        func target(_ id: String, _ field: String) throws -> Int {
            guard let t = index[id] else { throw JourneyError("\(path).\(field)", "no step is called \(id)", code: "unknown_step") }
            return t
        }
        if s.late != nil, kind != .send { throw JourneyError("\(path).late", "only a send step may say what to do when it is late") }
        if let late = s.late, !["skip", "send"].contains(late) { throw JourneyError("\(path).late", "must be skip or send") }
        if s.next != nil, kind == .branch || kind == .exit { throw JourneyError("\(path).next", "a \(kind.rawValue) step has no next") }
        var wait: WaitTime?
        switch kind {
        case .send:
            guard (1...3).contains(s.send!.channels.count) else { throw JourneyError("\(path).send.channels", "give 1 to 3 channels, in fallback order") }
        case .wait:
            let w = s.wait!
            if let d = w.for {
                guard w.until == nil, w.offset == nil else { throw JourneyError("\(path).wait", "give either for or until (with offset), not both") }
                let ms = try duration(d, at: "\(path).wait.for")
                guard ms > 0 else { throw JourneyError("\(path).wait.for", "must be a positive duration") }
                wait = .duration(ms)
            } else if let until = w.until {
                guard until == "anchor" else { throw JourneyError("\(path).wait.until", "must be anchor") }
                guard anchor != nil else { throw JourneyError("\(path).wait.until", "the journey has no anchor") }
                wait = .anchor(offsetMs: try w.offset.map { try duration($0, at: "\(path).wait.offset") } ?? 0)
            } else {
                throw JourneyError("\(path).wait", "give for (a duration) or until: anchor")
            }
            if let e = w.orEvent { try checkEvent(e, at: "\(path).wait.orEvent") }
        case .branch:
            let b = s.branch!
            try checkCondition(b.if, at: "\(path).branch.if", steps: steps, index: index, attributes: attributes)
            return Node(id: s.id, kind: kind, successors: [try target(b.then, "branch.then"), try target(b.else, "branch.else")], wait: nil)
        case .tag:
            let t = s.tag!
            let names = (t.add ?? []) + (t.remove ?? [])
            guard !names.isEmpty else { throw JourneyError("\(path).tag", "add or remove at least one tag") }
            if let bad = names.first(where: { !TagName.isValid($0) }) { throw JourneyError("\(path).tag", "\(bad) is not a valid tag name") }
        case .update:
            let u = s.update!
            guard !u.isEmpty else { throw JourneyError("\(path).update", "set at least one attribute") }
            for (name, value) in u.sorted(by: { $0.key < $1.key }) where value != .null {
                do { _ = try attributes.canonical(name, value) } catch let e as CustomerAttributes.Invalid {
                    throw JourneyError("\(path).update.\(name)", e.reason, code: "invalid_attribute")
                }
            }
            for name in u.keys where attributes.attributes[name] == nil {
                throw JourneyError("\(path).update.\(name)", "unknown attribute (declare it in customers.attributes)", code: "unknown_attribute")
            }
        case .crm:
            let c = s.crm!
            guard c.qualify == true || c.note != nil else { throw JourneyError("\(path).crm", "give qualify: true or a note") }
            if let note = c.note, !(1...2000).contains(note.utf8.count) { throw JourneyError("\(path).crm.note", "must be 1 to 2000 bytes") }
        case .exit:
            return Node(id: s.id, kind: kind, successors: [], wait: nil)
        }
        let following = try s.next.map { try target($0, "next") } ?? (i + 1 < steps.count ? i + 1 : nil)
        return Node(id: s.id, kind: kind, successors: following.map { [$0] } ?? [], wait: wait)
    }

    static func checkCondition(
        _ c: JourneyDefinition.Condition, at path: String, steps: [JourneyDefinition.Step], index: [String: Int], attributes: CustomerAttributes
    ) throws {
        let given: [(String, String?)] = [
            ("clicked", c.clicked), ("opened", c.opened), ("delivered", c.delivered), ("event", c.event), ("audience", c.audience),
            ("attribute", c.attribute),
        ]
        let present = given.filter { $0.1 != nil }
        guard present.count == 1, let (field, value) = present.first, let value else {
            throw JourneyError(path, "give exactly one of clicked, opened, delivered, event, audience or attribute")
        }
        switch field {
        case "clicked", "opened", "delivered":
            guard let i = index[value] else { throw JourneyError("\(path).\(field)", "no step is called \(value)", code: "unknown_step") }
            guard steps[i].send != nil else { throw JourneyError("\(path).\(field)", "\(value) is not a send step") }
        case "event": try checkEventName(value, at: "\(path).event")
        case "audience":
            do { _ = try TagExpression.parse(value) } catch let e as TagExpression.ParseError {
                throw JourneyError("\(path).audience", e.description, code: "invalid_expression")
            }
        default:
            let parsed: TagExpression
            do { parsed = try TagExpression.parse(value) } catch let e as TagExpression.ParseError {
                throw JourneyError("\(path).attribute", e.description, code: "invalid_expression")
            }
            guard case .attribute(let name, let cmp, let v) = parsed else {
                throw JourneyError("\(path).attribute", "must be one comparison such as profile.spend>=1000")
            }
            do { _ = try attributes.predicate(name, cmp, v, nowMs: 0) } catch let e as CustomerAttributes.Invalid {
                throw JourneyError("\(path).attribute", e.description, code: "unknown_attribute")
            }
        }
    }

    /// A loop a customer could go round without ever waiting (step ids in order), if there is one.
    static func cycleWithoutWait(_ nodes: [Node]) -> [String]? {
        var state = [Int](repeating: 0, count: nodes.count)  // 0 new, 1 on the path, 2 done
        var path = [Int]()
        func visit(_ n: Int) -> [String]? {
            if nodes[n].kind == .wait { return nil }
            if state[n] == 1 { return (path.drop { $0 != n } + [n]).map { nodes[$0].id } }
            if state[n] == 2 { return nil }
            state[n] = 1
            path.append(n)
            for s in nodes[n].successors { if let c = visit(s) { return c } }
            path.removeLast()
            state[n] = 2
            return nil
        }
        for n in nodes.indices { if let c = visit(n) { return c } }
        return nil
    }
}

/// A journey definition the gateway cannot run, with the field at fault.
public struct JourneyError: Error, Equatable, CustomStringConvertible {
    public let field: String
    public let reason: String
    public let code: String

    public init(_ field: String, _ reason: String, code: String = "invalid_journey") {
        self.field = field
        self.reason = reason
        self.code = code
    }

    public var description: String { "\(field): \(reason)" }
}
