import GatewayCore
import XCTest

/// The pure rules of a WeCom group send: the split into tasks, WeCom's body, the content limits and
/// when results are polled.
final class WeComGroupSendCoreTests: XCTestCase {
    func test_chunks_areSortedAndAtMostTenThousand_theSameWhateverTheOrder() {
        let ids = (0..<10_001).map { String(format: "wm%05d", $0) }
        let chunks = WeComGroupSend.chunks(ids.shuffled())
        XCTAssertEqual(chunks.map(\.count), [10_000, 1])
        XCTAssertEqual(chunks.flatMap { $0 }, ids)
        XCTAssertEqual(WeComGroupSend.chunks(ids.reversed()), chunks)
        XCTAssertEqual(WeComGroupSend.chunks([]), [])
    }

    func test_taskBody_isWeComsShape() {
        let body = WeComGroupSend.taskBody(
            sender: "sales-a", externalUserIds: ["wmA1", "wmA2"], text: "Hi",
            attachments: [
                .image(mediaId: "MEDIA1"), .news([.init(title: "Plan", description: "Hall 3", url: "https://e.example/p", picUrl: nil)]),
                .miniprogram(.init(title: "Book", appId: "wx1234567890abcdef", pagePath: "pages/book", thumbMediaId: "THUMB1")),
            ])
        XCTAssertEqual(
            body.text,
            #"{"attachments":[{"image":{"media_id":"MEDIA1"},"msgtype":"image"},{"link":{"desc":"Hall 3","title":"Plan","url":"https://e.example/p"},"msgtype":"link"},{"miniprogram":{"appid":"wx1234567890abcdef","page":"pages/book","pic_media_id":"THUMB1","title":"Book"},"msgtype":"miniprogram"}],"chat_type":"single","external_userid":["wmA1","wmA2"],"sender":"sales-a","text":{"content":"Hi"}}"#
        )
    }

    func test_problem_namesWhatIsWrong() {
        XCTAssertNil(WeComGroupSend.problem(text: "Hi", attachments: []))
        XCTAssertNil(WeComGroupSend.problem(text: nil, attachments: [.image(mediaId: "M1")]))
        XCTAssertEqual(WeComGroupSend.problem(text: nil, attachments: []), "needs a text or attachments")
        XCTAssertEqual(WeComGroupSend.problem(text: String(repeating: "字", count: 1_334), attachments: []), "text: at most 4000 bytes")
        XCTAssertEqual(WeComGroupSend.problem(text: "Hi", attachments: Array(repeating: .image(mediaId: "M1"), count: 10)), "attachments: at most 9")
        XCTAssertEqual(WeComGroupSend.problem(text: "Hi", attachments: [.text("x")]), "attachments[0]: a text goes in `text`, not in attachments")
        XCTAssertNotNil(WeComGroupSend.problem(text: "Hi", attachments: [.news([])]))
    }

    func test_results_arePolledAtTheTasksAge_atMostHalfHourly_untilFinalOrAWeek() {
        var t = WeComGroupTask(account: "corp", owner: "sales-a", variant: "default", chunk: 0, recipients: 3)
        XCTAssertNil(t.nextPoll(nowMs: 0), "not created yet")
        t.state = .submitted
        t.createdAt = 1_000_000
        XCTAssertEqual(t.nextPoll(nowMs: 1_000_000), 1_030_000)
        XCTAssertEqual(t.nextPoll(nowMs: 1_000_000 + 100_000), 1_200_000)
        XCTAssertEqual(t.nextPoll(nowMs: 1_000_000 + 86_400_000), 1_000_000 + 86_400_000 + 1_800_000)
        XCTAssertNil(t.nextPoll(nowMs: 1_000_000 + WeComGroupTask.pollWindowMs))
        t.results.sent = 2
        t.failList = 1
        XCTAssertNotNil(t.nextPoll(nowMs: 1_000_000), "final counts, but never polled yet")
        t.polledAt = 1_000_000
        XCTAssertNil(t.nextPoll(nowMs: 1_000_000), "every recipient is final")
        XCTAssertEqual(WeComGroupSend.parseGroup(t.id.components(separatedBy: "#")[0])?.owner, "sales-a")
    }
}
