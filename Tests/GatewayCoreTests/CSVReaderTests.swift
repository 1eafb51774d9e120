import XCTest

@testable import GatewayCore

final class CSVReaderTests: XCTestCase {
    func test_csvReader_quotesLineBreaksBOMAndBrokenRecords() {
        var reader = CSVReader()
        let text = "\u{FEFF}a,b\r\n\"x, \"\"y\"\"\",\"multi\nline\"\n\n1,2\"bad\n3,4"
        var records = [CSVReader.Record]()
        // Fed a byte at a time: chunk boundaries fall anywhere.
        for b in Array(text.utf8) { records += reader.feed([b]) }
        records += reader.finish()
        XCTAssertEqual(
            records, [
                .init(line: 1, fields: ["a", "b"], error: nil),
                .init(line: 2, fields: ["x, \"y\"", "multi\nline"], error: nil),
                .init(line: 5, fields: [], error: "a quote inside an unquoted field (quote the field and double the quote)"),
                .init(line: 6, fields: ["3", "4"], error: nil),
            ])
    }

    func test_importParser_csvHeaderMustNameKnownColumnsWithAnIdentity() throws {
        let attributes = CustomerAttributes()
        for (header, fragment) in [("phone,shoe\n", "unknown column shoe"), ("profile.city\n", "no identity column"), ("email,email\n", "twice")] {
            var parser = CustomerImportParser(format: .csv, attributes: attributes, accounts: [])
            XCTAssertThrowsError(try parser.feed(Array(header.utf8)), header) {
                XCTAssertTrue(($0 as? CustomerImportParser.HeaderError)?.reason.contains(fragment) == true, "\($0)")
            }
        }
        var parser = CustomerImportParser(format: .csv, attributes: attributes, accounts: ["demo"])
        let rows = try parser.feed(Array("openid,account,profile.spend\no1,demo,12\no2,,1\n".utf8)) + parser.finish()
        XCTAssertEqual(rows.count, 2)
        guard case .success(let first) = rows[0], case .failure(let second) = rows[1] else { return XCTFail("\(rows)") }
        XCTAssertEqual(first.identities, [Identity(kind: .openid, account: "demo", value: "o1")])
        XCTAssertEqual(first.profile.map(\.1), ["12"])
        XCTAssertEqual(second, .init(line: 3, reason: "openid needs an account column"))
    }
}
