// swift-tools-version:6.0
import PackageDescription

let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "scrm-gateway",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "scrm-gateway", targets: ["scrm-gateway"]),
        .executable(name: "scrmctl", targets: ["scrmctl"]),
        .executable(name: "scrm-bench", targets: ["scrm-bench"]),
        .executable(name: "scrm-fakes", targets: ["scrm-fakes"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
    ],
    targets: [
        // System libraries: typed shims over variadic and macro C APIs. Only GatewayCrypto, RedisClient,
        // HTTPTransport and QRImage import these.
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // QR symbols for the codes the gateway draws (QRImage only).
        .systemLibrary(name: "CQREncode", pkgConfig: "libqrencode", providers: [.apt(["libqrencode-dev"])]),
        .target(name: "QRImage", dependencies: ["CQREncode"], swiftSettings: strict),

        .target(name: "GatewayCrypto", dependencies: ["COpenSSL"], swiftSettings: strict),
        .target(
            name: "RedisClient",
            dependencies: [
                "CHiredis", "GatewayCrypto",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        .target(name: "HTTPTransport", dependencies: ["CCurl", .product(name: "NIOConcurrencyHelpers", package: "swift-nio")], swiftSettings: strict),
        .target(
            name: "GatewayCore",
            dependencies: ["GatewayCrypto", .product(name: "Yams", package: "Yams"), .product(name: "NIOConcurrencyHelpers", package: "swift-nio")],
            swiftSettings: strict
        ),
        .target(
            name: "Store",
            dependencies: [
                "GatewayCore", "GatewayCrypto", "RedisClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            // The Redis Functions library (StoreFunctions), compiled into the binary.
            resources: [
                .embedInCode("Lua/customer_base.lua"), .embedInCode("Lua/customers.lua"), .embedInCode("Lua/crm.lua"), .embedInCode("Lua/limits.lua"), .embedInCode("Lua/leases.lua"), .embedInCode("Lua/customer_profile.lua"), .embedInCode("Lua/customer_import.lua"),
                .embedInCode("Lua/engagement.lua"),
                .embedInCode("Lua/conversion.lua"), .embedInCode("Lua/outbound.lua"), .embedInCode("Lua/outbound_steps.lua"), .embedInCode("Lua/campaigns.lua"), .embedInCode("Lua/scores.lua"), .embedInCode("Lua/journeys.lua"),
                .embedInCode("Lua/tags.lua"), .embedInCode("Lua/erasure.lua"), .embedInCode("Lua/audience.lua"), .embedInCode("Lua/segments.lua"),
                .embedInCode("Lua/surfaces.lua"), .embedInCode("Lua/wecom_groups.lua"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "HTTPAPI",
            dependencies: [
                "GatewayCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "Ingress",
            dependencies: [
                "GatewayCore", "HTTPAPI", "Store", "GatewayCrypto", "RedisClient", "CRMSync",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "AdminAPI",
            dependencies: [
                "GatewayCore", "HTTPAPI", "Store", "GatewayCrypto", "Ingress", "RedisClient", "Outbound", "Campaigns", "CRMSync", "QRImage",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            resources: [
                .embedInCode("openapi.yaml"),
                .embedInCode("Console/strings.json"),
                .embedInCode("Console/templates/layout.mustache"),
                .embedInCode("Console/templates/login.mustache"),
                .embedInCode("Console/templates/problem.mustache"),
                .embedInCode("Console/templates/dashboard.mustache"),
                .embedInCode("Console/templates/dashboard_panels.mustache"),
                .embedInCode("Console/templates/dashboard_body.mustache"),
                .embedInCode("Console/templates/customers.mustache"),
                .embedInCode("Console/templates/customer.mustache"),
                .embedInCode("Console/templates/audiences.mustache"),
                .embedInCode("Console/templates/campaigns.mustache"),
                .embedInCode("Console/templates/campaign_new.mustache"),
                .embedInCode("Console/templates/campaign_preview.mustache"),
                .embedInCode("Console/templates/campaign.mustache"),
                .embedInCode("Console/templates/journeys.mustache"),
                .embedInCode("Console/templates/journey_edit.mustache"),
                .embedInCode("Console/templates/journey.mustache"),
                .embedInCode("Console/templates/ops_tabs.mustache"),
                .embedInCode("Console/templates/imports.mustache"),
                .embedInCode("Console/templates/import.mustache"),
                .embedInCode("Console/templates/operations.mustache"),
                .embedInCode("Console/templates/audit.mustache"),
                .embedInCode("Console/templates/keys.mustache"),
                .embedInCode("Console/templates/system.mustache"),
                .embedInCode("Console/templates/channels.mustache"),
                .embedInCode("Console/assets/console.css"),
                .embedInCode("Console/assets/console.js"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "App",
            dependencies: [
                "GatewayCore", "HTTPAPI", "Store", "Ingress", "AdminAPI", "RedisClient", "Outbound", "Campaigns", "CRMSync", "HTTPTransport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "scrm-gateway",
            dependencies: [
                "App", "GatewayCore", "RedisClient", "Outbound", "CRMSync", "Store",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "scrmctl",
            dependencies: [
                "GatewayCore", "GatewayCrypto", "HTTPTransport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "scrm-bench",
            dependencies: [
                "GatewayCore", "GatewayCrypto", "HTTPTransport", "Outbound", "RedisClient", "Store",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "Outbound",
            dependencies: [
                "GatewayCore", "GatewayCrypto", "RedisClient", "HTTPTransport", "Store",
                .product(name: "Metrics", package: "swift-metrics"), .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "Campaigns",
            dependencies: [
                "GatewayCore", "GatewayCrypto", "RedisClient", "Store", "Outbound",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"), .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "CRMSync",
            dependencies: [
                "GatewayCore", "GatewayCrypto", "RedisClient", "HTTPTransport", "Store", "Outbound",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        // Fuzz targets over the parsers strangers reach (scripts/fuzz), and their replay driver.
        .target(name: "FuzzTargets", dependencies: ["GatewayCore", "GatewayCrypto"], swiftSettings: strict),
        .executableTarget(name: "scrm-fuzz", dependencies: ["FuzzTargets"], swiftSettings: strict),
        // Loopback fakes of the providers (WeChat API, SMS, ESP, CRM) for tests and benchmarks.
        .target(
            name: "FakeProviders",
            dependencies: [
                "GatewayCore", "GatewayCrypto", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"), .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(name: "scrm-fakes", dependencies: ["FakeProviders", .product(name: "Hummingbird", package: "hummingbird")], swiftSettings: strict),

        // Test helpers: start a real redis-server on a free loopback port.
        .target(name: "TestSupport", dependencies: ["RedisClient"], path: "Tests/TestSupport", swiftSettings: strict),
        .testTarget(name: "GatewayCryptoTests", dependencies: ["GatewayCrypto"], swiftSettings: strict),
        .testTarget(name: "GatewayCoreTests", dependencies: ["GatewayCore", "GatewayCrypto", "FuzzTargets"], swiftSettings: strict),
        .testTarget(name: "RedisClientTests", dependencies: ["RedisClient", "GatewayCrypto", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "OutboundTests",
            dependencies: [
                "Outbound", "GatewayCore", "RedisClient", "Store", "HTTPTransport", "FakeProviders", "TestSupport",
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "HTTPTransportTests", dependencies: ["HTTPTransport", "GatewayCore", "FakeProviders", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "AppTests",
            dependencies: [
                "App", "GatewayCore", "GatewayCrypto", "Store", "RedisClient", "TestSupport", "HTTPTransport", "Outbound", "FakeProviders", "Campaigns", "CRMSync",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
