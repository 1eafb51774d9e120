import GatewayCore
import HTTPAPI

/// A WeCom group-send task in a campaign's report (`wecomTasks`), times as ISO 8601.
struct WeComTaskView: Encodable {
    let id: String
    let account: String
    let owner: String
    let variant: String
    let chunk: Int
    let recipients: Int
    let state: String
    let msgId: String?
    let failList: Int
    let results: WeComGroupTask.Results
    let createdAt: String?
    let polledAt: String?
    let foundAfterCrash: Bool?
    let error: String?

    init(_ t: WeComGroupTask) {
        id = t.id
        account = t.account
        owner = t.owner
        variant = t.variant
        chunk = t.chunk
        recipients = t.recipients
        state = t.state.rawValue
        msgId = t.msgId
        failList = t.failList
        results = t.results
        createdAt = t.createdAt.map(JSONResponse.isoTime)
        polledAt = t.polledAt.map(JSONResponse.isoTime)
        foundAfterCrash = t.foundAfterCrash
        error = t.error
    }
}
