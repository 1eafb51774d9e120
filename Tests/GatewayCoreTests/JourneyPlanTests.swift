import Foundation
import XCTest

@testable import GatewayCore

/// Journey definitions: durations, anchors, the step graph, and a 400-worthy error naming the field
/// for every way a definition can be wrong.
final class JourneyPlanTests: XCTestCase {
    func test_isoDurations() throws {
        XCTAssertEqual(try ISODuration.milliseconds("P3D"), 3 * 86_400_000)
        XCTAssertEqual(try ISODuration.milliseconds("-P1D"), -86_400_000)
        XCTAssertEqual(try ISODuration.milliseconds("-PT1H"), -3_600_000)
        XCTAssertEqual(try ISODuration.milliseconds("PT10S"), 10_000)
        let mixed: Int64 = 86_400_000 + 7_200_000 + 1_800_000 + 5_000
        XCTAssertEqual(try ISODuration.milliseconds("P1DT2H30M5S"), mixed)
        XCTAssertEqual(try ISODuration.milliseconds("P2W"), 14 * 86_400_000)
        XCTAssertEqual(try ISODuration.milliseconds("PT0S"), 0)
        for bad in ["", "P", "PT", "3D", "P1M", "P1Y", "P1H", "PT1D", "P1DT", "P1D1D", "PT1.5S", "P-1D", "--P1D", "P1234567890D", "P 1D"] {
            XCTAssertThrowsError(try ISODuration.milliseconds(bad), bad)
        }
    }

    static let expo = """
        {"name": "Expo 2026 reminders",
         "trigger": {"event": "subscribe", "scene": "expo2026"},
         "anchor": "2026-12-10T09:00:00+08:00",
         "exitOn": [{"event": "expo.checkin"}, {"event": "web.register"}],
         "reentry": "never",
         "steps": [
           {"id": "invite", "send": {"channels": [{"channel": "wechat", "account": "demo", "template": "T1", "data": {}}, {"channel": "sms", "text": "hi"}]}},
           {"id": "w3", "wait": {"until": "anchor", "offset": "-P3D"}},
           {"id": "remind3", "send": {"channels": [{"channel": "sms", "text": "3 days"}]}},
           {"id": "w1", "wait": {"until": "anchor", "offset": "-P1D"}},
           {"id": "opened", "branch": {"if": {"clicked": "remind3"}, "then": "remind1", "else": "sms1"}},
           {"id": "sms1", "send": {"channels": [{"channel": "sms", "text": "tomorrow"}]}, "next": "w1h"},
           {"id": "remind1", "send": {"channels": [{"channel": "sms", "text": "tomorrow!"}]}},
           {"id": "w1h", "wait": {"until": "anchor", "offset": "-PT1H"}},
           {"id": "remind1h", "send": {"channels": [{"channel": "sms", "text": "in an hour"}]}, "late": "send"},
           {"id": "after", "wait": {"until": "anchor", "offset": "P1D"}},
           {"id": "thanks", "send": {"channels": [{"channel": "sms", "text": "thanks"}]}},
           {"id": "tagit", "tag": {"add": ["expo-2026-invited"], "remove": []}}
         ]}
        """

    func definition(_ json: String) throws -> JourneyDefinition { try JSONDecoder().decode(JourneyDefinition.self, from: Data(json.utf8)) }

    func test_theExpoJourney_compilesToItsGraph() throws {
        let plan = try JourneyPlan(try definition(Self.expo), attributes: CustomerAttributes())
        XCTAssertEqual(plan.anchor, .fixed(1_796_864_400_000), "2026-12-10T01:00:00Z")
        XCTAssertEqual(plan.reentry, .never)
        XCTAssertEqual(plan.nodes.map(\.kind.rawValue), ["send", "wait", "send", "wait", "branch", "send", "send", "wait", "send", "wait", "send", "tag"])
        XCTAssertEqual(plan.nodes[1].wait, .anchor(offsetMs: -3 * 86_400_000))
        XCTAssertEqual(plan.nodes[4].successors, [6, 5], "branch: then remind1, else sms1")
        XCTAssertEqual(plan.nodes[5].successors, [7], "sms1 goes on to w1h")
        XCTAssertEqual(plan.nodes[11].successors, [], "the last step ends the journey")
    }

    func test_perCustomerAnchor_needsADatetimeAttribute() throws {
        var d = try definition(Self.expo)
        d.anchor = "profile.expo_date"
        XCTAssertEqual(try JourneyPlan(d, attributes: CustomerAttributes()).anchor, .attribute("expo_date"))
        d.anchor = "profile.city"
        XCTAssertThrowsError(try JourneyPlan(d, attributes: CustomerAttributes())) { XCTAssertEqual(($0 as? JourneyError)?.field, "anchor") }
        d.anchor = "profile.nope"
        XCTAssertThrowsError(try JourneyPlan(d, attributes: CustomerAttributes())) { XCTAssertEqual(($0 as? JourneyError)?.code, "unknown_attribute") }
    }

    func test_badDefinitions_nameTheField() throws {
        let cases: [(String, (inout JourneyDefinition) -> Void)] = [
            ("name", { $0.name = "" }),
            ("trigger", { $0.trigger = .init(event: "subscribe", tagAdded: "vip") }),
            ("trigger", { $0.trigger = .init(scene: "x") }),
            ("trigger.event", { $0.trigger = .init(event: "sub scribe") }),
            ("trigger.audience", { $0.trigger = .init(audience: "vip &") }),
            ("exitOn[1].event", { $0.exitOn?[1].event = "" }),
            ("reentry", { $0.reentry = "sometimes" }),
            ("reentry", { $0.reentry = "after:P1M" }),
            ("anchor", { $0.anchor = "next tuesday" }),
            ("steps", { $0.steps = [] }),
            ("steps[2].id", { $0.steps[2].id = "invite" }),
            ("steps[0]", { $0.steps[0].wait = .init(for: "P1D") }),
            ("steps[0].send.channels", { $0.steps[0].send?.channels = [] }),
            ("steps[1].wait.offset", { $0.steps[1].wait?.offset = "3 days" }),
            ("steps[1].wait", { $0.steps[1].wait = .init(for: "P1D", until: "anchor") }),
            ("steps[1].wait.for", { $0.steps[1].wait = .init(for: "PT0S") }),
            ("steps[1].wait.until", { $0.steps[1].wait?.until = "expo" }),
            ("steps[4].branch.then", { $0.steps[4].branch?.then = "nowhere" }),
            ("steps[4].branch.if.clicked", { $0.steps[4].branch?.if = .init(clicked: "w3") }),
            ("steps[4].branch.if", { $0.steps[4].branch?.if = .init() }),
            ("steps[4].branch.if.attribute", { $0.steps[4].branch?.if = .init(attribute: "vip") }),
            ("steps[4].branch.if.attribute", { $0.steps[4].branch?.if = .init(attribute: "profile.shoe_size>=40") }),
            ("steps[4].next", { $0.steps[4].next = "sms1" }),
            ("steps[5].next", { $0.steps[5].next = "w1x" }),
            ("steps[1].late", { $0.steps[1].late = "send" }),
            ("steps[11].tag", { $0.steps[11].tag = .init(add: [], remove: []) }),
            ("steps[11].update.spend", { $0.steps[11] = .init(id: "upd", update: ["spend": .string("lots")]) }),
            ("steps[11].update.shoe_size", { $0.steps[11] = .init(id: "upd", update: ["shoe_size": .int(40)]) }),
            ("steps[11].crm", { $0.steps[11] = .init(id: "c", crm: .init()) }),
        ]
        for (field, edit) in cases {
            var d = try definition(Self.expo)
            edit(&d)
            XCTAssertThrowsError(try JourneyPlan(d, attributes: CustomerAttributes()), field) { e in
                XCTAssertEqual((e as? JourneyError)?.field, field, "\(e)")
            }
        }
        // The journey without an anchor cannot wait for it.
        var d = try definition(Self.expo)
        d.anchor = nil
        XCTAssertThrowsError(try JourneyPlan(d, attributes: CustomerAttributes())) { XCTAssertEqual(($0 as? JourneyError)?.field, "steps[1].wait.until") }
    }

    func test_aLoopWithoutAWait_isRefused_andOneWithAWaitIsNot() throws {
        var d = try definition(Self.expo)
        d.steps[11].tag = nil
        d.steps[11].next = "opened"  // tagit -> opened -> sms1 -> w1h (a wait): fine
        d.steps[11].tag = .init(add: ["again"])
        XCTAssertNoThrow(try JourneyPlan(d, attributes: CustomerAttributes()))
        d.steps[5].next = "opened"  // opened -> sms1 -> opened: no wait between
        XCTAssertThrowsError(try JourneyPlan(d, attributes: CustomerAttributes())) { e in
            XCTAssertEqual((e as? JourneyError)?.code, "journey_cycle")
            XCTAssertTrue("\(e)".contains("opened -> sms1 -> opened"), "\(e)")
        }
    }
}

extension JourneyPlanTests {
    func test_eventMatching() {
        let subscribe = JourneyDefinition.EventMatch(event: "subscribe", scene: "expo2026")
        XCTAssertTrue(JourneyPlan.matches(subscribe, type: "event.subscribe", payload: ["EventKey": "qrscene_expo2026"]))
        XCTAssertTrue(JourneyPlan.matches(subscribe, type: "event.SCAN", payload: ["EventKey": "expo2026"]) == false, "a scan is not a subscribe")
        XCTAssertFalse(JourneyPlan.matches(subscribe, type: "event.subscribe", payload: ["EventKey": "qrscene_other"]))
        XCTAssertTrue(JourneyPlan.matches(.init(event: "click", key: "MENU_PRICING"), type: "event.CLICK", payload: ["EventKey": "MENU_PRICING"]))
        XCTAssertTrue(JourneyPlan.matches(.init(event: "web.register"), type: "web.register", payload: [:]))
        XCTAssertFalse(JourneyPlan.matches(.init(event: "web.register"), type: "web.register.v2", payload: [:]))
        XCTAssertFalse(JourneyPlan.matches(.init(event: "register"), type: "web.register", payload: [:]))
    }

    func test_moves_waitAtTheirMoment_andSkipLateRemindersWithTheirSend() throws {
        let plan = try JourneyPlan(try definition(Self.expo), attributes: CustomerAttributes())
        let anchor: Int64 = 1_796_864_400_000
        let day: Int64 = 86_400_000
        // Enrolled 10 days before: invite now, then wait for 3 days before.
        XCTAssertEqual(plan.start(now: anchor - 10 * day, anchorMs: anchor), .init(step: 0, dueAt: anchor - 10 * day))
        XCTAssertEqual(plan.after(0, now: anchor - 10 * day, anchorMs: anchor), .init(step: 1, dueAt: anchor - 3 * day))
        XCTAssertEqual(plan.after(1, now: anchor - 3 * day, anchorMs: anchor), .init(step: 2, dueAt: anchor - 3 * day), "the wait is over: remind3 now")
        // Enrolled 12 hours before: the 3-day and 1-day reminders are past, skipped with their sends;
        // the branch after w1 runs, and the send it leads to is skipped too (still late); the 1-hour
        // wait is ahead and ends the lateness.
        let now = anchor - 12 * 3_600_000
        let late = plan.after(0, now: now, anchorMs: anchor)
        XCTAssertEqual(late.step, 4, "the branch")
        XCTAssertTrue(late.late)
        XCTAssertEqual(late.skipped, [.init(step: 1, reason: "late"), .init(step: 2, reason: "late"), .init(step: 3, reason: "late")])
        let branched = plan.after(4, taken: 5, now: now, anchorMs: anchor, late: late.late)
        XCTAssertEqual(branched, .init(step: 7, dueAt: anchor - 3_600_000, late: false, skipped: [.init(step: 5, reason: "late")]))
        // Reaching w1h 30 minutes before: past, but remind1h is sent anyway (late: send).
        let oneHour = plan.after(6, now: anchor - 30 * 60_000, anchorMs: anchor)
        XCTAssertEqual(oneHour.step, 8)
        XCTAssertEqual(oneHour.skipped, [.init(step: 7, reason: "late")])
        // The branch's taken step; the last step ends the journey.
        XCTAssertEqual(plan.after(4, taken: 5, now: anchor - day, anchorMs: anchor).step, 5)
        XCTAssertEqual(plan.after(11, now: anchor + 2 * day, anchorMs: anchor).step, nil)
        // A per-customer anchor the customer lacks: its waits are skipped as if late.
        XCTAssertEqual(plan.after(0, now: anchor - 10 * day, anchorMs: nil).skipped.first, .init(step: 1, reason: "no_anchor"))
    }

    func test_durationWaits_countFromReachingThem() throws {
        let d = try definition(#"{"name": "w", "trigger": {"event": "subscribe"}, "steps": [{"id": "a", "tag": {"add": ["x"]}}, {"id": "w", "wait": {"for": "PT10S"}}, {"id": "b", "exit": true}]}"#)
        let plan = try JourneyPlan(d, attributes: CustomerAttributes())
        XCTAssertEqual(plan.after(0, now: 1_000, anchorMs: nil), .init(step: 1, dueAt: 11_000))
        XCTAssertEqual(plan.after(1, now: 11_000, anchorMs: nil), .init(step: 2, dueAt: 11_000))
    }
}
