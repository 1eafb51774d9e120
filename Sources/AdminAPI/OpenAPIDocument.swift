/// The admin API's OpenAPI 3.0 document (`openapi.yaml` beside this file, in the binary), served at
/// `/api/v1/openapi.yaml` (no token needed: it holds no data). Every operation has an `operationId`
/// and its request and response schemas. `OpenAPITests` checks it against the route table (every
/// route documented, every documented operation a route, each answering a documented status), and
/// `scripts/api-check` runs schemathesis against a live gateway with it.
enum OpenAPIDocument {
    static let yaml = String(decoding: PackageResources.openapi_yaml, as: UTF8.self)
}
