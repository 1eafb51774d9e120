/// What a marketer submits to create a journey (JSON body, or YAML through `scrmctl journey create`):
/// a trigger that enrols customers, then steps run per customer (send, wait, branch, tag, update,
/// crm, exit), in order unless `next` or a branch says otherwise.
public struct JourneyDefinition: Codable, Sendable, Equatable {
    public var name: String
    public var trigger: Trigger
    /// A fixed ISO 8601 time with offset, or `profile.<datetime attribute>` (per customer): what
    /// `wait: {until: "anchor"}` counts from.
    public var anchor: String?
    /// Events that take a customer out of the journey at once.
    public var exitOn: [EventMatch]?
    /// `never` (default), `always`, or `after:<ISO duration>` since the previous enrolment.
    public var reentry: String?
    /// Transactional journeys skip frequency caps and quiet hours.
    public var transactional: Bool?
    public var steps: [Step]

    /// What enrols a customer: exactly one of an event (with optional matches), a tag added, a stage
    /// reached, or an audience (its members when the journey is activated).
    public struct Trigger: Codable, Sendable, Equatable {
        public var event: String?
        public var scene: String?
        public var key: String?
        public var tagAdded: String?
        public var stage: String?
        public var audience: String?
    }

    /// An interaction type (`subscribe`, `click`, `web.register`, `message.click`) with optional
    /// matches on the QR scene or the menu key.
    public struct EventMatch: Codable, Sendable, Equatable {
        public var event: String
        public var scene: String?
        public var key: String?

        public init(event: String, scene: String? = nil, key: String? = nil) {
            self.event = event
            self.scene = scene
            self.key = key
        }
    }

    public struct Step: Codable, Sendable, Equatable {
        public var id: String
        /// The step to go to after this one (default: the next in the list).
        public var next: String?
        public var send: Send?
        public var wait: Wait?
        public var branch: Branch?
        public var tag: TagChange?
        /// Profile attributes to set (`null` removes one).
        public var update: [String: JSONValue]?
        public var crm: CRMAction?
        public var exit: Bool?
        /// For a send after a wait whose moment had passed: `skip` (default) or `send`.
        public var late: String?
    }

    public struct Send: Codable, Sendable, Equatable {
        /// Campaign-style channels, in fallback order.
        public var channels: [CampaignDefinition.ChannelContent]
    }

    /// `for` a duration, or `until` the anchor plus `offset`, optionally waking early on `orEvent`.
    public struct Wait: Codable, Sendable, Equatable {
        public var `for`: String?
        public var until: String?
        public var offset: String?
        public var orEvent: EventMatch?
    }

    public struct Branch: Codable, Sendable, Equatable {
        public var `if`: Condition
        public var then: String
        public var `else`: String
    }

    /// Exactly one of: a step's message was clicked / opened / delivered, an event since enrolment,
    /// the customer is in an audience, or an attribute comparison (`profile.spend>=1000`).
    public struct Condition: Codable, Sendable, Equatable {
        public var clicked: String?
        public var opened: String?
        public var delivered: String?
        public var event: String?
        public var audience: String?
        public var attribute: String?
    }

    public struct TagChange: Codable, Sendable, Equatable {
        public var add: [String]?
        public var remove: [String]?
    }

    /// `qualify: true` marks the lead qualified; `note` adds a note to the CRM record.
    public struct CRMAction: Codable, Sendable, Equatable {
        public var qualify: Bool?
        public var note: String?
    }
}
