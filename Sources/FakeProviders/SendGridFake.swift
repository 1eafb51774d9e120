import Foundation
import GatewayCrypto
import HTTPTypes
import Hummingbird

/// SendGrid's v3 `mail/send` as a loopback fake: bearer API key, the JSON shape (personalizations with
/// `to`, `from.email`, a subject, non-empty `content`), 202 with `X-Message-Id`, and SendGrid's error
/// shape `{"errors":[{"message","field","help"}]}`.
public final class SendGridFake: Sendable {
    public let ledger: FakeLedger
    let apiKey: String

    public init(ledger: FakeLedger, apiKey: String) {
        self.ledger = ledger
        self.apiKey = apiKey
    }

    public func add(to router: Router<BasicRequestContext>) {
        router.post("/v3/mail/send") { request, _ -> Response in
            let buffer = try await request.body.collect(upTo: 1 << 22)
            if let forced = self.ledger.begin("sendgrid.send") { return forced.response }
            guard let auth = request.headers[.authorization], ConstantTime.equals(auth, "Bearer " + self.apiKey) else {
                return Self.error("The provided authorization grant is invalid, expired, or revoked", field: nil, status: 401)
            }
            guard let body = jsonObject(buffer) else { return Self.error("Bad Request", field: nil, status: 400) }
            guard let p = (body["personalizations"] as? [[String: Any]])?.first, let to = (p["to"] as? [[String: Any]])?.first?["email"] as? String
            else { return Self.error("The personalizations field is required and must have at least one personalization.", field: "personalizations") }
            guard (body["from"] as? [String: Any])?["email"] is String else { return Self.error("The from object must be provided for every email send.", field: "from") }
            guard (body["subject"] ?? p["subject"]) is String else { return Self.error("The subject is required.", field: "subject") }
            guard let content = body["content"] as? [[String: Any]], !content.isEmpty, content.allSatisfy({ $0["type"] is String && $0["value"] is String })
            else { return Self.error("Unless a valid template_id is provided, the content parameter is required.", field: "content") }
            let messageId = (p["custom_args"] as? [String: Any])?["scrm_message_id"] as? String
            let id = self.ledger.deliver("sendgrid", to: to, messageId: messageId, body: flatten(body)) { "14c5d75ce93.dfd.\($0)" }
            await self.ledger.holdWhileHanging()
            var headers = HTTPFields()
            headers[HTTPField.Name("X-Message-Id")!] = id
            return Response(status: .accepted, headers: headers)
        }
    }

    static func error(_ message: String, field: String?, status: Int = 400) -> Response {
        jsonResponse(["errors": [["message": message, "field": field as Any? ?? NSNull(), "help": NSNull()]]], status: status)
    }
}
