import XCTest

@testable import GatewayCore

final class ReplyRulesTests: XCTestCase {
    func text(_ content: String) -> InboundMessage {
        InboundMessage(fields: ["ToUserName": "gh_oa", "FromUserName": "o-user", "MsgType": "text", "Content": content, "MsgId": "1"])
    }

    func event(_ name: String, key: String = "") -> InboundMessage {
        InboundMessage(fields: ["ToUserName": "gh_oa", "FromUserName": "o-user", "MsgType": "event", "Event": name, "EventKey": key])
    }

    func test_keywordMatching_firstRuleWinsThenDefault() {
        let rules = ReplyRules(
            keywords: [
                KeywordRule(match: .prefix, keyword: "hello", reply: .text("prefix")),
                KeywordRule(match: .contains, keyword: "PRICE", reply: .text("contains")),
                KeywordRule(match: .exact, keyword: "Hi", caseSensitive: true, reply: .text("exact")),
                KeywordRule(match: .regex, keyword: #"^order\s*#?\d{6}$"#, reply: .text("regex")),
            ],
            fallback: .text("default"))
        let c = CompiledReplies(rules)
        XCTAssertEqual(c.reply(to: text("HeLLo world")), .text("prefix"))
        XCTAssertEqual(c.reply(to: text("say hello")), .text("default"), "prefix means at the start")
        XCTAssertEqual(c.reply(to: text("what price?")), .text("contains"))
        XCTAssertEqual(c.reply(to: text("Hi")), .text("exact"))
        XCTAssertEqual(c.reply(to: text("hi")), .text("default"), "case-sensitive exact")
        XCTAssertEqual(c.reply(to: text("Order #123456")), .text("regex"))
        XCTAssertEqual(c.reply(to: text("order 12345")), .text("default"))
        XCTAssertEqual(c.reply(to: InboundMessage(fields: ["MsgType": "image", "MsgId": "2"])), .text("default"), "any other message gets the default")
        XCTAssertNil(c.reply(to: event("LOCATION")))
    }

    func test_welcome_sceneOverride_andMenuClicks() {
        let rules = ReplyRules(
            welcome: .text("welcome"), sceneWelcomes: ["booth-a": .news([.init(title: "Booth A", url: "https://example.com/a")])],
            menu: ["V1001_NEWS": .image(mediaId: "MEDIA_1")])
        let c = CompiledReplies(rules)
        XCTAssertEqual(c.reply(to: event("subscribe")), .text("welcome"))
        XCTAssertEqual(c.reply(to: event("subscribe", key: "qrscene_other")), .text("welcome"))
        XCTAssertEqual(c.reply(to: event("subscribe", key: "qrscene_booth-a")), rules.sceneWelcomes["booth-a"])
        XCTAssertEqual(c.reply(to: event("SCAN", key: "booth-a")), rules.sceneWelcomes["booth-a"], "a follower scanning the booth code again")
        XCTAssertNil(c.reply(to: event("SCAN", key: "other")), "no generic welcome for someone who already follows")
        XCTAssertEqual(c.reply(to: event("CLICK", key: "V1001_NEWS")), .image(mediaId: "MEDIA_1"))
        XCTAssertNil(c.reply(to: event("CLICK", key: "UNKNOWN")))
        XCTAssertNil(c.reply(to: text("anything")), "no default configured")
    }

    func test_problems_nameWhatIsWrong() {
        let tooMany = (0..<2).map { WeChatContent.Article(title: "t\($0)", url: "https://e.com/\($0)") }
        let rules = ReplyRules(
            welcome: .text(""),
            sceneWelcomes: ["bad scene": .text("x")],
            keywords: [
                KeywordRule(match: .regex, keyword: "(a", reply: .text("x")),
                KeywordRule(match: .exact, keyword: "news", reply: .news(tooMany)),
                KeywordRule(match: .regex, keyword: #"\1"#, reply: .text("x")),
            ],
            menu: ["K": .image(mediaId: "bad id!")],
            fallback: .news([.init(title: "t", url: "javascript:alert(1)")]))
        let p = rules.problems()
        XCTAssertTrue(p.contains("welcome.text: 1 to 2048 bytes"), "\(p)")
        XCTAssertTrue(p.contains { $0.hasPrefix("sceneWelcomes.bad scene:") })
        XCTAssertTrue(p.contains { $0.hasPrefix("keywords[0].keyword: missing ')'") }, "\(p)")
        XCTAssertTrue(p.contains { $0.hasPrefix("keywords[1].reply.articles: 1 to 1 article") }, "one article in a reply to a message")
        XCTAssertTrue(p.contains { $0.hasPrefix("keywords[2].keyword: back-references") })
        XCTAssertTrue(p.contains { $0.hasPrefix("menu.K.mediaId") })
        XCTAssertTrue(p.contains { $0.hasPrefix("default.articles[0].url") })
        XCTAssertEqual(ReplyRules(welcome: .news(tooMany)).problems(), [], "events may carry up to 8 articles")
    }

    func test_json_roundTripsWithTypedReplies() throws {
        let json = #"""
            {"welcome":{"type":"text","text":"欢迎"},"keywords":[{"match":"regex","keyword":"价格|price","reply":{"type":"image","mediaId":"M1"}}],
             "menu":{"K1":{"type":"news","articles":[{"title":"T","url":"https://e.com","picUrl":"https://e.com/p.jpg"}]}},"default":{"type":"text","text":"?"}}
            """#
        let rules = try JSONDecoder().decode(ReplyRules.self, from: Data(json.utf8))
        XCTAssertEqual(rules.keywords.first?.caseSensitive, false)
        XCTAssertEqual(CompiledReplies(rules).reply(to: text("多少价格")), .image(mediaId: "M1"))
        XCTAssertEqual(try JSONDecoder().decode(ReplyRules.self, from: JSONEncoder().encode(rules)), rules)
        XCTAssertThrowsError(try JSONDecoder().decode(WeChatContent.self, from: Data(#"{"type":"voice","mediaId":"x"}"#.utf8)))
    }

    func test_passiveReplyXML_perKind() {
        let m = text("x")
        XCTAssertEqual(
            ReplyXML.render(.image(mediaId: "M1"), replyingTo: m, createTime: 7),
            "<xml><ToUserName><![CDATA[o-user]]></ToUserName><FromUserName><![CDATA[gh_oa]]></FromUserName><CreateTime>7</CreateTime>"
                + "<MsgType><![CDATA[image]]></MsgType><Image><MediaId><![CDATA[M1]]></MediaId></Image></xml>")
        XCTAssertEqual(
            ReplyXML.render(.news([.init(title: "A]]>B", description: "d", url: "https://e.com/a", picUrl: nil)]), replyingTo: m, createTime: 7),
            "<xml><ToUserName><![CDATA[o-user]]></ToUserName><FromUserName><![CDATA[gh_oa]]></FromUserName><CreateTime>7</CreateTime>"
                + "<MsgType><![CDATA[news]]></MsgType><ArticleCount>1</ArticleCount><Articles><item><Title><![CDATA[A]]]]><![CDATA[>B]]></Title>"
                + "<Description><![CDATA[d]]></Description><PicUrl><![CDATA[]]></PicUrl><Url><![CDATA[https://e.com/a]]></Url></item></Articles></xml>")
        XCTAssertEqual(ReplyXML.render(.text("hi"), replyingTo: m, createTime: 7), ReplyXML.text(replyingTo: m, content: "hi", createTime: 7))
    }
}

final class BoundedRegexTests: XCTestCase {
    func test_syntax_matchesLikeARegularExpression() throws {
        let cases: [(String, String, Bool)] = [
            ("abc", "xxabcxx", true), ("^abc", "xabc", false), ("abc$", "abcx", false), ("a.c", "abc", true), ("a.c", "a\nc", false),
            ("colou?r", "color", true), ("colou?r", "colour", true), ("ab+c", "ac", false), ("ab*c", "ac", true),
            ("[a-c]x", "bx", true), ("[^a-c]x", "bx", false), (#"\d{3}-\d{4}"#, "call 555-1234", true), (#"\d{3,}"#, "12", false),
            (#"^\w+@\w+\.com$"#, "ann@example.com", true), ("(?:cat|dog)s?$", "hotdogs", true), ("a{2,3}b", "ab", false),
            ("a{2,3}b", "aaab", true), ("价格|多少钱", "这个多少钱？", true), (#"\s"#, "全角\u{3000}空格", true), ("x|", "anything", true),
            (#"a\.b"#, "axb", false), ("[.]", "a", false), ("[-a]", "-", true), ("(ab)*c", "ababc", true), ("(a|ab)(c|bcd)", "abcd", true),
        ]
        for (pattern, text, expected) in cases {
            XCTAssertEqual(try BoundedRegex(pattern, caseSensitive: true).matches(text), expected, "\(pattern) on \(text)")
        }
        XCTAssertTrue(try BoundedRegex("HELLO").matches("say hello"), "case-insensitive by default")
        XCTAssertFalse(try BoundedRegex(#"\D"#).matches("123"), "escapes keep their case when folding")
        XCTAssertTrue(try BoundedRegex("[A-Z]+").matches("abc"))
    }

    func test_refusesWhatItCannotRunSafely() {
        for bad in ["", "(", ")", "a**", "*a", "(?=a)", #"(a)\1"#, "a{101}", "[z-a]", #"\q"#, String(repeating: "a", count: 257), "(a{100}){100}"] {
            XCTAssertThrowsError(try BoundedRegex(bad), bad)
        }
    }

    func test_pathologicalPatternsRunInLinearTime_andTheBudgetStopsAnyMatch() throws {
        // Catastrophic for a backtracking engine: (a+)+$ on "aaaa...!".
        let input = String(repeating: "a", count: 2_000) + "!"
        XCTAssertEqual(try BoundedRegex("^(a+)+$").evaluate(input), .noMatch)
        XCTAssertEqual(try BoundedRegex("(a|aa)*b").evaluate(input), .noMatch)
        XCTAssertEqual(try BoundedRegex("(a|aa)*b").evaluate(input, budget: 1_000), .overBudget)
    }
}

final class MassSendTests: XCTestCase {
    func test_sendallBody_isWeChatsShapePerType() {
        XCTAssertEqual(
            MassSend.body(tagId: 7, content: .text("Hi"), clientMsgId: "c1").text,
            #"{"clientmsgid":"c1","filter":{"is_to_all":false,"tag_id":7},"msgtype":"text","text":{"content":"Hi"}}"#)
        XCTAssertEqual(
            MassSend.body(tagId: 7, content: .mpnews(mediaId: "M"), clientMsgId: "c2").text,
            #"{"clientmsgid":"c2","filter":{"is_to_all":false,"tag_id":7},"mpnews":{"media_id":"M"},"msgtype":"mpnews","send_ignore_reprint":0}"#)
        XCTAssertEqual(
            MassSend.body(tagId: 7, content: .images(["A", "B"]), clientMsgId: "c3").text,
            #"{"clientmsgid":"c3","filter":{"is_to_all":false,"tag_id":7},"images":{"media_ids":["A","B"],"need_open_comment":0,"only_fans_can_comment":0},"msgtype":"image"}"#)
        XCTAssertNotNil(MassSend.Content.images([]).problem)
        XCTAssertNil(MassSend.Content.text("ok").problem)
    }

    func test_quotaWindows_areBeijingDaysAndMonths() {
        // 2026-12-31T16:30:00Z is 2027-01-01 00:30 in Beijing.
        let ms: Int64 = 1_798_734_600_000
        let day = MassSendQuota(period: .day, limit: 1).window(nowMs: ms)
        XCTAssertEqual(day.id, "2027-01-01")
        XCTAssertEqual(day.endsAtMs, 1_798_819_200_000, "2027-01-02 00:00 Beijing")
        let month = MassSendQuota(period: .month, limit: 4).window(nowMs: ms)
        XCTAssertEqual(month.id, "2027-01")
        XCTAssertEqual(month.endsAtMs, 1_801_411_200_000, "2027-02-01 00:00 Beijing")
        XCTAssertEqual(MassSendQuota(period: .month, limit: 4).window(nowMs: 1_803_830_400_000 - 1).id, "2027-02", "the last ms of February (28 days)")
    }
}
