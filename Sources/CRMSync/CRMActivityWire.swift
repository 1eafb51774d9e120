import Foundation
import GatewayCore
import HTTPTransport
import Store

/// Marketo custom activities: a synced lead's recent interactions, each once, as
/// `POST /rest/v1/activities/external.json` `{"input": [{"leadId", "activityDate", "activityTypeId",
/// "primaryAttributeValue", "attributes": [{"name", "value"}]}]}`, up to 300 a call. The interaction's
/// type is the primary attribute; its detail (JSON, cut to Marketo's 255-character string) the
/// spec's `detail_attribute`. Answers as leads.json does: `success`, then per input `added` or
/// `skipped` with reasons.
extension CRMWire {
    public static let maxActivitiesPerCall = 300

    /// The activities of `record`'s recent interactions newer than `after` (ms), oldest first, with
    /// when each happened.
    public func activities(_ record: CRMRecord, leadId: String, after: Int64) -> [(at: Int64, input: JSONValue)] {
        guard let a = spec.activities else { return [] }
        let lead: JSONValue = Int64(leadId).map(JSONValue.int) ?? .string(leadId)
        var out = [(at: Int64, input: JSONValue)]()
        for e in record.recent {
            let at: Int64
            switch e.lookup("at") {
            case .int(let i)?: at = i
            case .double(let d)?: at = Int64(d)
            default: continue
            }
            guard at > after, let type = e.lookup("type")?.scalarText else { continue }
            let detail = e.lookup("data").map { $0.text } ?? "{}"
            out.append((at, .object([
                "leadId": lead, "activityDate": .string(CRMRecord.iso(at)), "activityTypeId": .int(Int64(a.typeId)), "primaryAttributeValue": .string(type),
                "attributes": .array([.object(["name": .string(a.detailAttribute), "value": .string(String(detail.prefix(255)))])]),
            ])))
        }
        return out.sorted { $0.at < $1.at }
    }

    public func activitiesRequest(_ inputs: [JSONValue], bearer: String?) -> HTTPRequest {
        HTTPRequest(
            method: "POST", url: spec.setting("base_url") + "/rest/v1/activities/external.json",
            headers: [("Authorization", "Bearer " + (bearer ?? "")), ("Content-Type", "application/json")],
            body: Array(JSONValue.object(["input": .array(inputs)]).text.utf8), timeoutMs: 30_000)
    }

    /// How many were added and the skip reasons; or, for a call that did nothing, why (as for a batch
    /// of leads: throttled, a token to fetch again, worth another try).
    public func activitiesOutcome(_ r: HTTPResponse) -> (added: Int, skipped: [String], failed: CRMBatchOutcome?) {
        let body = JSONValue.parse(r.body)
        guard r.status == 200, case .bool(true)? = body?.lookup("success") else {
            return (0, [], marketo(r, body: body, records: []))
        }
        var added = 0
        var skipped = [String]()
        if case .array(let results)? = body?.lookup("result") {
            for res in results {
                if res.lookup("status")?.scalarText == "added" {
                    added += 1
                } else if case .array(let reasons)? = res.lookup("reasons"), !reasons.isEmpty {
                    let (code, message) = Self.marketoReason(res)
                    skipped.append("\(code) \(message)")
                }
            }
        }
        return (added, skipped, nil)
    }
}
