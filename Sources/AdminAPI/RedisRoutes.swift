import GatewayCore
import HTTPAPI
import Hummingbird
import Ingress
import Store

/// `GET /api/v1/redis`: the Redis servers, node by node (on a cluster: masters with their slots, then
/// replicas), with key counts, memory, and how evenly the keys are spread over the masters.
struct RedisRoutes {
    let nodes: RedisNodes

    func register<Context: RequestContext>(on group: DeclaredRoutes<Context>) {
        group.get("/redis", .operationsRead) { _, _ in try await storage { try JSONResponse.encoded(try await nodes.report()) } }
    }
}
