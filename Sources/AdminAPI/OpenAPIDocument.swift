/// The admin API's OpenAPI 3.0 document, served at `/api/v1/openapi.yaml` (no token needed: it holds
/// no data). `OpenAPITests` calls every operation it lists and checks the answer is one it documents,
/// and that every route in Sources/AdminAPI is listed.
enum OpenAPIDocument {
    static let yaml = #"""
        openapi: 3.0.3
        info:
          title: scrm-gateway admin API
          version: "1"
          description: |
            Customers, tags, audiences, campaigns, outbound messages and dead letters. Every call needs
            `Authorization: Bearer <key>`: an API key (`scrm_<id>_<secret>`, made with POST /keys) or the
            bootstrap admin token (admin.token in config/gateway.yaml). The API is closed when neither
            exists. Each operation needs one permission; a key's role grants a set of
            them (admin, marketer, analyst, integration, support), and a call without it answers 403
            `forbidden`. Mutating calls, exports and refusals are written to the audit log (GET /audit).
            Errors are `{"error":{"code","message"}}`; 503 `unavailable` means Redis could not be
            reached and the call may be retried.
        servers:
          - url: /api/v1
        security:
          - bearer: []
        paths:
          /customers/lookup:
            get:
              summary: Find the customer holding an identity
              parameters:
                - { name: openid, in: query, schema: { type: string } }
                - { name: account, in: query, description: the account of an openid, schema: { type: string } }
                - { name: unionid, in: query, schema: { type: string } }
                - { name: phone, in: query, schema: { type: string } }
                - { name: email, in: query, schema: { type: string } }
              responses:
                "200": { $ref: "#/components/responses/Customer" }
                "400": { $ref: "#/components/responses/Error" }
                "404": { $ref: "#/components/responses/Error" }
          /customers/{id}:
            get:
              summary: One customer (a merged id answers 308 to the survivor)
              parameters: [{ $ref: "#/components/parameters/id" }]
              responses:
                "200": { $ref: "#/components/responses/Customer" }
                "308": { description: merged into another customer; Location names it }
                "404": { $ref: "#/components/responses/Error" }
            patch:
              summary: Set or remove profile attributes (typed by customers.attributes), the time zone and consent
              description: >-
                A null value removes the field. Every value is checked first; a bad one answers 400 naming it and
                nothing is stored. Each consent change records its source and time (timeline consent.changed);
                granting a channel clears the opt-outs recorded on the customer's addresses for it.
              parameters: [{ $ref: "#/components/parameters/id" }]
              requestBody:
                required: true
                content:
                  application/json:
                    schema:
                      type: object
                      properties:
                        profile: { type: object, description: "attribute -> value (string, number, boolean, datetime, timezone or enum member) or null", additionalProperties: true }
                        timezone: { type: string, nullable: true, description: IANA name, for quiet hours }
                        consent:
                          type: object
                          properties:
                            sms: { type: string, enum: [granted, revoked] }
                            email: { type: string, enum: [granted, revoked] }
                        source: { type: string, description: "who records the consent (default api)" }
              responses:
                "200": { $ref: "#/components/responses/Customer" }
                "308": { description: merged into another customer; repeat the PATCH at Location }
                "400": { $ref: "#/components/responses/Error" }
                "404": { $ref: "#/components/responses/Error" }
          /customers/{id}/timeline:
            get:
              summary: The customer's interactions, newest first
              parameters: [{ $ref: "#/components/parameters/id" }, { $ref: "#/components/parameters/limit" }]
              responses:
                "200": { description: "{id, entries: [...]}" }
                "308": { description: merged into another customer }
                "400": { $ref: "#/components/responses/Error" }
                "404": { $ref: "#/components/responses/Error" }
          /customers/{id}/score:
            get:
              summary: Lead score as it is now (decayed since scoredAt when the rules set a half-life), the stage, and the rules that made it
              parameters: [{ $ref: "#/components/parameters/id" }]
              responses:
                "200": { description: "{customerId, score, stage, scoredAt, reasons: [{at, type: score, data: {rule, points}}]}" }
                "308": { description: merged into another customer }
                "404": { $ref: "#/components/responses/Error" }
          /customers/{id}/identities:
            post:
              summary: Bind a phone, email or unionid (merges when another customer holds it)
              parameters: [{ $ref: "#/components/parameters/id" }]
              requestBody:
                required: true
                content:
                  application/json:
                    schema:
                      type: object
                      required: [type, value]
                      properties:
                        type: { type: string, enum: [phone, email, unionid, openid] }
                        value: { type: string }
                        account: { type: string }
              responses:
                "200": { description: "{result: bound|already_bound|merged, customer}" }
                "400": { $ref: "#/components/responses/Error" }
                "404": { $ref: "#/components/responses/Error" }
          /sessions/{account}/{openid}:
            get:
              summary: A follower's 48-hour service window and last messages
              parameters:
                - { name: account, in: path, required: true, schema: { type: string } }
                - { name: openid, in: path, required: true, schema: { type: string } }
              responses:
                "200": { description: "{open, lastInteractionAt, closesAt, customerId, messages}" }
                "404": { $ref: "#/components/responses/Error" }
          /tags:
            get:
              summary: Every tag with its number of customers
              responses:
                "200": { description: "{tags: [{name, customers}]}" }
            post:
              summary: Create a tag
              requestBody: { $ref: "#/components/requestBodies/Name" }
              responses:
                "200": { description: existed already }
                "201": { description: created }
                "400": { $ref: "#/components/responses/Error" }
          /tags/{name}:
            delete:
              summary: Delete a tag and remove it from every customer
              parameters: [{ $ref: "#/components/parameters/name" }]
              responses:
                "200": { description: "{name, removedFromCustomers}" }
                "400": { $ref: "#/components/responses/Error" }
                "404": { $ref: "#/components/responses/Error" }
          /tags/{name}/customers:
            get:
              summary: One page of a tag's customers
              parameters:
                - { $ref: "#/components/parameters/name" }
                - { $ref: "#/components/parameters/limit" }
                - { name: cursor, in: query, schema: { type: string } }
              responses:
                "200": { description: "{name, count, customerIds, nextCursor}" }
                "400": { $ref: "#/components/responses/Error" }
                "404": { $ref: "#/components/responses/Error" }
            post:
              summary: Tag customers
              parameters: [{ $ref: "#/components/parameters/name" }]
              requestBody: { $ref: "#/components/requestBodies/CustomerIds" }
              responses:
                "200": { description: "{name, changed, unknown}" }
                "400": { $ref: "#/components/responses/Error" }
                "413": { $ref: "#/components/responses/Error" }
            delete:
              summary: Untag customers
              parameters: [{ $ref: "#/components/parameters/name" }]
              requestBody: { $ref: "#/components/requestBodies/CustomerIds" }
              responses:
                "200": { description: "{name, changed, unknown}" }
                "400": { $ref: "#/components/responses/Error" }
                "404": { $ref: "#/components/responses/Error" }
          /events:
            post:
              summary: Record up to 1,000 interactions from other channels; scored like webhooks
              description: |
                An identity held by another customer merges the two only when it is marked verified and
                the caller's role may merge (admin, integration); otherwise the pair becomes a merge
                candidate (GET /merge-candidates) and the identity stays with its holder. Applied in
                chunks of 100 events, each all or nothing; give event ids so a retried batch records each once.
              requestBody:
                required: true
                content:
                  application/json:
                    schema:
                      type: object
                      required: [events]
                      properties:
                        events:
                          type: array
                          maxItems: 1000
                          items:
                            type: object
                            required: [type]
                            properties:
                              type: { type: string, description: "dotted name, e.g. web.form_submit, live.watch (not event.*, message.*, customer.*, identity.*, crm.*, lead.*, score.*: the gateway's own)" }
                              identities:
                                type: array
                                items:
                                  type: object
                                  properties:
                                    type: { type: string }
                                    value: { type: string }
                                    account: { type: string }
                                    verified: { type: boolean, description: "you checked the person holds it (an OTP, a login): it may merge two customers" }
                              identity: { type: object, description: one identity (instead of identities) }
                              customer: { type: string, description: a customer id (instead of identities) }
                              at: { description: "ISO 8601 with offset, or ms since the epoch; default now" }
                              data: { type: object, description: "at most 50 scalar fields; scoring rules read them (when: data / atLeast)" }
                              id: { type: string, description: "client event id: a second delivery is recorded once" }
              responses:
                "200": { description: "{recorded, duplicates, results: [{customer, created} | {customer, duplicate} | {error: unknown_customer}]}" }
                "400": { $ref: "#/components/responses/Error" }
                "413": { $ref: "#/components/responses/Error" }
          /scoring/reload:
            post:
              summary: Read the scoring rules file again (other processes pick edits up by themselves within seconds)
              responses:
                "200": { description: "{file, rules, stages, tiers, qualifyAt}" }
                "400": { $ref: "#/components/responses/Error" }
                "409": { $ref: "#/components/responses/Error" }
          /crm:
            get:
              summary: CRM sync status per adapter
              responses:
                "200": { description: "{adapters: [{adapter, style, queue: {waiting, inFlight, retrying}, budget: {requests, windowMs, used}, batchSize, synced, deadLettered, calls, throttled, lastSuccessAt, lastError, lastErrorAt}]}" }
          /customers/{id}/crm:
            get:
              summary: The customer's sync with each CRM adapter
              parameters: [{ $ref: "#/components/parameters/id" }]
              responses:
                "200": { description: "{customerId, crm: [{adapter, state: synced|waiting|in_flight|retrying|failed|never, recordId, syncedAt, snapshots, syncedSnapshot, attempts, lastError}]}" }
          /crm/{adapter}/resync:
            post:
              summary: Queue customers for the adapter again (their current state is sent)
              parameters: [{ name: adapter, in: path, required: true, schema: { type: string } }]
              requestBody:
                required: true
                content:
                  application/json:
                    schema: { type: object, required: [customers], properties: { customers: { type: array, items: { type: string } } } }
              responses:
                "202": { description: "{queued}" }
                "400": { $ref: "#/components/responses/Error" }
                "404": { $ref: "#/components/responses/Error" }
          /crm/{adapter}/dead-letters/replay:
            post:
              summary: Queue every customer the adapter dead-lettered again, and clear those dead letters
              parameters: [{ name: adapter, in: path, required: true, schema: { type: string } }]
              responses:
                "202": { description: "{replayed}" }
                "404": { $ref: "#/components/responses/Error" }
          /audiences/preview:
            post:
              summary: Count an audience and sample it (evaluated in Redis; nothing stored)
              requestBody:
                required: true
                content:
                  application/json:
                    schema:
                      type: object
                      required: [expression]
                      properties:
                        expression:
                          type: string
                          description: >-
                            Tags with & | ! ( ), predicates consent:, account:, stage:, tier:, score>=N, and comparisons on
                            indexed profile attributes and times: profile.spend>=1000, profile.city=Shanghai (text: = only,
                            ASCII case ignored), profile.expo_date<now+7d, lastSeen>now-30d, created>=2026-01-01.
                          example: "vip & (expo-2026 | webinar) & !churned & consent:sms & profile.spend>=1000"
                        sample: { type: integer, minimum: 0, maximum: 100, default: 10 }
              responses:
                "200": { description: "{expression, count, sample, warnings, elapsedMs}" }
                "400": { $ref: "#/components/responses/Error" }
          /customers/import:
            post:
              summary: Import customers from CSV (header row) or JSONL, streamed; answers 202 with the job
              description: >-
                Columns: phone, email, openid + account, unionid, external_id, profile.<attribute>, tags (;-separated),
                consent.sms, consent.email (granted | revoked). A row joins the customer holding one of its identities
                (merging customers it links) or creates one; empty cells change nothing. Bad rows are rejected with
                their line and reason, the rest imported. The body may be up to customers.importMaxBytes (1 GiB).
              parameters:
                - { name: dryRun, in: query, schema: { type: boolean }, description: "check only: 200 with the counts, nothing stored" }
                - { name: source, in: query, schema: { type: string }, description: "label of the job (default import)" }
              requestBody:
                required: true
                content:
                  text/csv: { schema: { type: string } }
                  application/x-ndjson: { schema: { type: string } }
              responses:
                "200": { description: "dry run: {dryRun, rowsRead, valid, rejected, bytes, rejections: [{line, reason}]}" }
                "202": { $ref: "#/components/responses/Import" }
                "400": { $ref: "#/components/responses/Error" }
                "413": { $ref: "#/components/responses/Error" }
                "415": { $ref: "#/components/responses/Error" }
          /imports:
            get:
              summary: The newest 50 import jobs
              responses:
                "200": { description: "{imports: [Import]}" }
          /imports/{id}:
            get:
              summary: An import's progress
              parameters: [{ $ref: "#/components/parameters/id" }]
              responses:
                "200": { $ref: "#/components/responses/Import" }
                "404": { $ref: "#/components/responses/Error" }
          /audiences/export:
            get:
              summary: The customers an expression selects, as CSV streamed a page at a time (bounded memory)
              parameters:
                - { name: expr, in: query, required: true, schema: { type: string }, description: an audience expression, as for preview }
                - name: fields
                  in: query
                  schema: { type: string }
                  description: >-
                    comma-separated columns: id, phone, email, unionid, external_id, openid, tags, score, stage, tier,
                    consent.sms, consent.email, createdAt, lastSeenAt, timezone, profile.<attribute>; default id, phone,
                    email, tags and every declared attribute
              responses:
                "200": { description: "text/csv (RFC 4180, a header row; cells starting with = + - @ prefixed with ')" }
                "400": { $ref: "#/components/responses/Error" }
          /campaigns:
            get:
              summary: Campaigns, newest first, with progress
              parameters: [{ $ref: "#/components/parameters/limit" }]
              responses:
                "200": { description: "{campaigns: [Campaign]}" }
                "400": { $ref: "#/components/responses/Error" }
            post:
              summary: Create a campaign (draft)
              requestBody:
                required: true
                content:
                  application/json:
                    schema: { $ref: "#/components/schemas/CampaignDefinition" }
              responses:
                "201": { $ref: "#/components/responses/Campaign" }
                "400": { $ref: "#/components/responses/Error" }
                "413": { $ref: "#/components/responses/Error" }
          /campaigns/{id}:
            get:
              summary: One campaign with live progress (counters, rate, ETA)
              parameters: [{ $ref: "#/components/parameters/id" }]
              responses:
                "200": { $ref: "#/components/responses/Campaign" }
                "404": { $ref: "#/components/responses/Error" }
          /campaigns/{id}/report:
            get:
              summary: Counters per variant and channel (sent, delivered, clicked, opened...), skip/failure reasons, and conversions with lift against the hold-out
              description: >-
                conversions: {goal, variants: [{name, sent, delivered, clicked, converted, conversionRate,
                liftVsHoldout: {absolute, relative, ci95: [low, high], significant}}], holdout: {size, converted,
                conversionRate}, winner, verdict}. The interval is the normal approximation of the difference of
                two proportions; the winner needs a two-proportion z-test above 1.96 against the runner-up.
              parameters: [{ $ref: "#/components/parameters/id" }]
              responses:
                "200": { description: "{id, name, state, audienceSize, totals, variants, channels, skipped, failed, fellBackTo (fallbacks at send time by the channel moved to), fellBackReasons, notes, conversions}" }
                "404": { $ref: "#/components/responses/Error" }
          /campaigns/{id}/start:
            post:
              summary: "draft -> scheduled (startAt later) or running (audience snapshot taken); expired if past its expiry"
              parameters: [{ $ref: "#/components/parameters/id" }]
              responses:
                "200": { $ref: "#/components/responses/Campaign" }
                "404": { $ref: "#/components/responses/Error" }
                "409": { $ref: "#/components/responses/Error" }
          /campaigns/{id}/pause:
            post:
              summary: "running -> paused: queued messages are set aside"
              parameters: [{ $ref: "#/components/parameters/id" }]
              responses:
                "200": { $ref: "#/components/responses/Campaign" }
                "404": { $ref: "#/components/responses/Error" }
                "409": { $ref: "#/components/responses/Error" }
          /campaigns/{id}/resume:
            post:
              summary: "paused -> running: set-aside messages go back on the queues"
              parameters: [{ $ref: "#/components/parameters/id" }]
              responses:
                "200": { $ref: "#/components/responses/Campaign" }
                "404": { $ref: "#/components/responses/Error" }
                "409": { $ref: "#/components/responses/Error" }
          /campaigns/{id}/cancel:
            post:
              summary: "draft, scheduled, running or paused -> cancelled: nothing more is sent"
              parameters: [{ $ref: "#/components/parameters/id" }]
              responses:
                "200": { $ref: "#/components/responses/Campaign" }
                "404": { $ref: "#/components/responses/Error" }
                "409": { $ref: "#/components/responses/Error" }
          /journeys:
            get:
              summary: Journeys, newest first
              parameters: [{ $ref: "#/components/parameters/limit" }]
              responses:
                "200": { description: "{journeys: [Journey]}" }
                "400": { $ref: "#/components/responses/Error" }
            post:
              summary: Create a journey (a draft, version 1); a bad definition answers 400 naming the field and stores nothing
              requestBody:
                required: true
                content:
                  application/json:
                    schema: { $ref: "#/components/schemas/JourneyDefinition" }
              responses:
                "201": { $ref: "#/components/responses/Journey" }
                "400": { $ref: "#/components/responses/Error" }
                "413": { $ref: "#/components/responses/Error" }
          /journeys/{id}:
            get:
              summary: "One journey, its current definition and its report: per step entered, waiting, completed, skipped by reason, exited; for a send queued, sent, delivered, failed, opened, clicked, converted (an exitOn event after it); for a branch then and else"
              parameters: [{ $ref: "#/components/parameters/id" }]
              responses:
                "200": { $ref: "#/components/responses/Journey" }
                "404": { $ref: "#/components/responses/Error" }
            put:
              summary: "Edit: saves version N+1 ({baseVersion: N, definition}); new enrolments take it, enrolled customers finish on theirs"
              parameters: [{ $ref: "#/components/parameters/id" }]
              requestBody:
                required: true
                content:
                  application/json:
                    schema:
                      type: object
                      required: [baseVersion, definition]
                      properties:
                        baseVersion: { type: integer, description: the version the edit was made on (409 when another was saved meanwhile) }
                        definition: { $ref: "#/components/schemas/JourneyDefinition" }
              responses:
                "200": { $ref: "#/components/responses/Journey" }
                "400": { $ref: "#/components/responses/Error" }
                "404": { $ref: "#/components/responses/Error" }
                "409": { $ref: "#/components/responses/Error" }
          /customers/{id}/journeys:
            get:
              summary: Where the customer is in each journey they entered, with what each send step did for them
              parameters: [{ $ref: "#/components/parameters/id" }]
              responses:
                "200": { description: "{customer, journeys: [{journey, name, version, state: active|done|exited, step?, dueAt?, late, enrolledAt, stepAt, exitedAt?, exitedOn?, history: [{step, message, channel, state, reason?, sentAt?, deliveredAt?, openedAt?, clickedAt?}]}]}" }
                "404": { $ref: "#/components/responses/Error" }
          /journeys/{id}/activate:
            post:
              summary: "draft -> active: it enrols customers (an audience trigger: its members now, enrolled in the background)"
              parameters: [{ $ref: "#/components/parameters/id" }]
              responses:
                "200": { $ref: "#/components/responses/Journey" }
                "400": { $ref: "#/components/responses/Error" }
                "404": { $ref: "#/components/responses/Error" }
                "409": { $ref: "#/components/responses/Error" }
          /journeys/{id}/pause:
            post:
              summary: "active -> paused"
              parameters: [{ $ref: "#/components/parameters/id" }]
              responses:
                "200": { $ref: "#/components/responses/Journey" }
                "404": { $ref: "#/components/responses/Error" }
                "409": { $ref: "#/components/responses/Error" }
          /journeys/{id}/resume:
            post:
              summary: "paused -> active"
              parameters: [{ $ref: "#/components/parameters/id" }]
              responses:
                "200": { $ref: "#/components/responses/Journey" }
                "400": { $ref: "#/components/responses/Error" }
                "404": { $ref: "#/components/responses/Error" }
                "409": { $ref: "#/components/responses/Error" }
          /journeys/{id}/archive:
            post:
              summary: "draft, active or paused -> archived (kept, enrols nobody, cannot be edited)"
              parameters: [{ $ref: "#/components/parameters/id" }]
              responses:
                "200": { $ref: "#/components/responses/Journey" }
                "404": { $ref: "#/components/responses/Error" }
                "409": { $ref: "#/components/responses/Error" }
          /messages:
            post:
              summary: Queue one message (idempotent by idempotencyKey)
              requestBody:
                required: true
                content:
                  application/json:
                    schema:
                      type: object
                      required: [channel]
                      properties:
                        channel: { type: string, enum: [wechat, sms, email] }
                        adapter: { type: string }
                        customerId: { type: string }
                        to: { type: string }
                        account: { type: string }
                        template: { type: string }
                        subject: { type: string }
                        text: { type: string }
                        html: { type: string }
                        link: { type: string }
                        variables: { type: object }
                        idempotencyKey: { type: string }
                        transactional: { type: boolean }
                trackLinks: { type: boolean, description: "rewrite links to /l/{token} and add an open pixel to email (needs outbound.linkSecret)" }
                goal:
                  type: object
                  required: [event, withinHours]
                  properties:
                    event: { type: string, example: web.register }
                    withinHours: { type: integer, minimum: 1, maximum: 720 }
              responses:
                "202": { description: "{id, state, duplicate}" }
                "400": { $ref: "#/components/responses/Error" }
                "413": { $ref: "#/components/responses/Error" }
          /messages/{id}:
            get:
              summary: One message and where it is (queued, sending, retrying, sent, delivered, failed, skipped)
              parameters: [{ $ref: "#/components/parameters/id" }]
              responses:
                "200": { description: "{id, channel, adapter, lane, state, attempts, idempotencyKey, createdAt, updatedAt, reason, providerId, lastError, customerId, to, account, campaign, variant, fellBackFrom [{channel, reason}] (channels tried before at send time), nextAttemptAt}" }
                "404": { $ref: "#/components/responses/Error" }
          /deadletters:
            get:
              summary: Messages that failed for good, newest first
              parameters: [{ $ref: "#/components/parameters/limit" }, { name: after, in: query, schema: { type: string } }]
              responses:
                "200": { description: "{deadLetters: [...]}" }
                "400": { $ref: "#/components/responses/Error" }
          /deadletters/{id}:
            delete:
              summary: Discard a dead letter
              parameters: [{ $ref: "#/components/parameters/entry" }]
              responses:
                "200": { description: "{discarded}" }
                "404": { $ref: "#/components/responses/Error" }
          /deadletters/{id}/replay:
            post:
              summary: Queue a dead letter's message again (a deliberate resend)
              parameters: [{ $ref: "#/components/parameters/entry" }]
              responses:
                "202": { description: "{id, state}" }
                "404": { $ref: "#/components/responses/Error" }
          /sandbox/messages:
            get:
              summary: Requests the sandbox adapters rendered instead of sending
              parameters:
                - { $ref: "#/components/parameters/limit" }
                - { name: channel, in: query, schema: { type: string, enum: [wechat, sms, email] } }
              responses:
                "200": { description: "{messages: [...]}" }
                "400": { $ref: "#/components/responses/Error" }
          /adapters:
            get:
              summary: Enabled adapters, their rate state, suspensions and open circuits, access-token budgets
              responses:
                "200": { description: "{adapters: [{name, channel, renders, sandbox, rateLimit, queued, scopes: [{scope, rateFactor, pausedUntil, suspendedUntil, providerFailures, circuitOpenUntil}]}], accessTokens: [...]}" }
          /accounts/{id}/followers/import:
            post:
              summary: Import the account's existing followers from WeChat (in the background)
              parameters: [{ $ref: "#/components/parameters/account" }]
              responses:
                "202": { description: progress }
                "404": { $ref: "#/components/responses/Error" }
                "409": { $ref: "#/components/responses/Error" }
            get:
              summary: The import's progress
              parameters: [{ $ref: "#/components/parameters/account" }]
              responses:
                "200": { description: progress }
                "404": { $ref: "#/components/responses/Error" }
          /accounts/{id}/tags/{tag}/push:
            post:
              summary: Push one of our tags to the account's WeChat tag (in the background)
              parameters: [{ $ref: "#/components/parameters/account" }, { name: tag, in: path, required: true, schema: { type: string } }]
              responses:
                "202": { description: progress }
                "400": { $ref: "#/components/responses/Error" }
                "404": { $ref: "#/components/responses/Error" }
                "409": { $ref: "#/components/responses/Error" }
            get:
              summary: The push's progress
              parameters: [{ $ref: "#/components/parameters/account" }, { name: tag, in: path, required: true, schema: { type: string } }]
              responses:
                "200": { description: progress }
                "400": { $ref: "#/components/responses/Error" }
                "404": { $ref: "#/components/responses/Error" }
          /keys:
            get:
              summary: Every API key, newest first (never the secret)
              responses:
                "200": { description: "{keys: [Key]}" }
            post:
              summary: Create an API key with a role; the key is in this answer only
              requestBody:
                required: true
                content:
                  application/json:
                    schema:
                      type: object
                      required: [name, role]
                      properties:
                        name: { type: string, maxLength: 64 }
                        role: { type: string, enum: [admin, marketer, analyst, integration, support] }
                        grants: { type: array, items: { type: string, enum: [customers.export] } }
                        expiresAt: { type: string, format: date-time }
              responses:
                "201": { description: "Key with key (the whole secret, shown once)" }
                "400": { $ref: "#/components/responses/Error" }
          /keys/{id}:
            delete:
              summary: Revoke a key; it is refused from the next call on
              parameters: [{ name: id, in: path, required: true, schema: { type: string, description: 12 hex characters } }]
              responses:
                "200": { description: "Key: {id, prefix, name, role, grants, createdAt, createdBy, expiresAt?, lastUsedAt?, revokedAt?}" }
                "404": { $ref: "#/components/responses/Error" }
          /audit:
            get:
              summary: The audit log, oldest first
              parameters:
                - { name: since, in: query, description: ISO 8601 time or epoch ms, schema: { type: string } }
                - { name: actor, in: query, description: "key:<id>, operator:<name> or bootstrap", schema: { type: string } }
                - { name: after, in: query, description: next of the previous page, schema: { type: string } }
                - { $ref: "#/components/parameters/limit" }
              responses:
                "200": { description: "{entries: [{id, actor, role, method, route, targets, status, outcome: ok|denied|failed, at}], next}" }
                "400": { $ref: "#/components/responses/Error" }
          /me:
            get:
              summary: Who the caller is, its role and permissions
              responses:
                "200": { description: "{actor, role, permissions}" }
          /operators:
            get:
              summary: Every console operator (never the password hash)
              responses:
                "200": { description: "{operators: [Operator]}" }
            post:
              summary: Create an operator with a role and a password (scrypt-hashed)
              requestBody:
                required: true
                content:
                  application/json:
                    schema:
                      type: object
                      required: [name, password, role]
                      properties:
                        name: { type: string, pattern: "^[a-z0-9._@-]{2,64}$" }
                        password: { type: string, minLength: 12, maxLength: 256 }
                        role: { type: string, enum: [admin, marketer, analyst, integration, support] }
                        grants: { type: array, items: { type: string, enum: [customers.export] } }
              responses:
                "201": { description: "Operator: {name, role, grants, createdAt, createdBy, lastLoginAt?, disabledAt?}" }
                "400": { $ref: "#/components/responses/Error" }
                "409": { $ref: "#/components/responses/Error" }
          /operators/{name}:
            delete:
              summary: Disable an operator; their sessions end at once
              parameters: [{ $ref: "#/components/parameters/name" }]
              responses:
                "200": { description: Operator }
                "404": { $ref: "#/components/responses/Error" }
          /session:
            post:
              summary: Sign in (no key needed); sets the scrm_session cookie (HttpOnly, SameSite=Strict, Secure behind https)
              security: []
              requestBody:
                required: true
                content:
                  application/json:
                    schema: { type: object, required: [name, password], properties: { name: { type: string }, password: { type: string } } }
              responses:
                "200": { description: "Session: {operator, role, permissions, csrfToken (send as X-CSRF-Token with every change), expiresAt}" }
                "400": { $ref: "#/components/responses/Error" }
                "401": { $ref: "#/components/responses/Error" }
                "429": { description: "locked (too many failures for the name) or rate_limited (the address); Retry-After" }
            get:
              summary: The caller's session, with its CSRF token
              responses:
                "200": { description: Session }
                "404": { $ref: "#/components/responses/Error" }
            delete:
              summary: Sign out; the cookie is cleared
              responses:
                "204": { description: signed out }
          /merge-candidates:
            get:
              summary: Pending merge candidates, oldest first
              parameters:
                - { $ref: "#/components/parameters/limit" }
                - { name: offset, in: query, schema: { type: integer } }
              responses:
                "200": { description: "{candidates: [MergeCandidate], pending, nextOffset}" }
                "400": { $ref: "#/components/responses/Error" }
          /merge-candidates/{id}:
            get:
              summary: One merge candidate
              parameters: [{ $ref: "#/components/parameters/id" }]
              responses:
                "200": { description: "MergeCandidate: {id, customer, other, identity: {type, value, account?}, source, actor, createdAt, state: pending|accepted|rejected, decidedAt?, decidedBy?, survivor?}" }
                "404": { $ref: "#/components/responses/Error" }
          /merge-candidates/{id}/accept:
            post:
              summary: Merge the two customers
              parameters: [{ $ref: "#/components/parameters/id" }]
              responses:
                "200": { description: MergeCandidate with survivor }
                "404": { $ref: "#/components/responses/Error" }
                "409": { $ref: "#/components/responses/Error" }
          /merge-candidates/{id}/reject:
            post:
              summary: Keep them apart; the pair is not proposed again
              parameters: [{ $ref: "#/components/parameters/id" }]
              responses:
                "200": { description: MergeCandidate }
                "404": { $ref: "#/components/responses/Error" }
                "409": { $ref: "#/components/responses/Error" }
        components:
          securitySchemes:
            bearer: { type: http, scheme: bearer }
          parameters:
            id: { name: id, in: path, required: true, schema: { type: string, description: 26-character ULID } }
            name: { name: name, in: path, required: true, schema: { type: string } }
            entry: { name: id, in: path, required: true, schema: { type: string, description: "dead-letter entry id (1700000000000-0)" } }
            account: { name: id, in: path, required: true, schema: { type: string, description: account id from the config } }
            limit: { name: limit, in: query, schema: { type: integer } }
          requestBodies:
            Name:
              required: true
              content: { application/json: { schema: { type: object, required: [name], properties: { name: { type: string } } } } }
            CustomerIds:
              required: true
              content:
                application/json:
                  schema: { type: object, required: [customerIds], properties: { customerIds: { type: array, items: { type: string } } } }
          responses:
            Error:
              description: "{error: {code, message}}; 409 on a campaign action: illegal_transition"
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      error: { type: object, properties: { code: { type: string }, message: { type: string } } }
            Import: { description: "{id, state: receiving|applying|completed|failed, format, source, bytes, rowsRead, valid, created, updated, merged, rejected, percentApplied, createdAt, receivedAt?, completedAt?, error?, rejections: [{line, reason}] (first 1,000)}" }
            Customer: { description: "{id, identities: [{type, account?, value}], tags, consent: {channel: {state, updatedAt, source?}}, profile: {attribute: value}, timezone?, score?, stage?, tier?, createdAt, firstSeenAt, lastSeenAt}" }
            Campaign: { description: "{id, name, state, audience, audienceSize, startAt, expiresAt, progress{planned, queued, sent, delivered, failed, skipped, deferred, holdout, open, percent, ratePerSecond, etaSeconds}, definition}" }
            Journey: { description: "{id, name, state: draft|active|paused|archived, version, createdAt, updatedAt, activatedAt?, definition: JourneyDefinition, report? (GET /journeys/{id}): {enrolled, active, completed, exited, converted, audience?: {members, toEnrol}, steps: [{id, kind, entered, waiting, completed, skipped: {reason: n}, exited, queued?, sent?, delivered?, failed?, opened?, clicked?, converted?, then?, else?}]}}" }
          schemas:
            JourneyDefinition:
              type: object
              required: [name, trigger, steps]
              description: >-
                Steps run in order unless next or a branch says otherwise. Each step has an id and exactly one
                of send {channels: [as campaign channels, in fallback order]}, wait {for: ISO duration | until:
                anchor, offset?, orEvent?}, branch {if: {clicked|opened|delivered: step id | event | audience |
                attribute: "profile.spend>=1000"}, then, else}, tag {add, remove}, update {attribute: value|null},
                crm {qualify?, note?}, exit: true; a send may say late: send|skip. Durations are ISO 8601 without
                years or months (P3D, -PT1H, PT10S).
              properties:
                name: { type: string }
                trigger: { type: object, description: "exactly one of event (with scene or key), tagAdded, stage, audience" }
                anchor: { type: string, description: "ISO 8601 time with offset, or profile.<datetime attribute>" }
                exitOn: { type: array, items: { type: object, description: "{event, scene?, key?}" } }
                reentry: { type: string, description: "never (default), always, after:<ISO duration>" }
                transactional: { type: boolean }
                steps: { type: array, items: { type: object } }
            CampaignDefinition:
              type: object
              required: [name, audience, channels]
              properties:
                name: { type: string }
                audience: { type: string, description: tag expression }
                channels:
                  type: array
                  description: fallback order
                  items:
                    type: object
                    required: [channel]
                    properties:
                      channel: { type: string, enum: [wechat, sms, email] }
                      adapter: { type: string }
                      account: { type: string }
                      template: { type: string }
                      subject: { type: string }
                      text: { type: string }
                      html: { type: string }
                      link: { type: string }
                      data: { type: object, additionalProperties: { type: string } }
                variants:
                  type: array
                  items:
                    type: object
                    required: [name, weight]
                    properties:
                      name: { type: string }
                      weight: { type: integer }
                      content: { type: object, description: "channel -> fields that differ" }
                holdoutPercent: { type: number }
                startAt: { type: string, format: date-time }
                expiresAt: { type: string, format: date-time }
                ratePerSecond: { type: number }
                transactional: { type: boolean }
        """#
}
