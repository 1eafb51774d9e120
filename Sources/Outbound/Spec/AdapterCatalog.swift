import Foundation
import GatewayCore

/// Every spec in `adapters/`, validated at start-up, with the enabled ones resolved against the
/// environment. A bad spec, a sandbox that renders an unknown adapter, or an enabled adapter whose
/// secret is not set fails the start with the file and key.
public struct AdapterCatalog: Sendable {
    public let specs: [String: AdapterSpec]
    public let adapters: [String: ResolvedAdapter]

    public static func load(directory: String, enabled: Set<String>, environment: [String: String]) throws -> AdapterCatalog {
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".yaml") }.sorted()
        guard !files.isEmpty else {
            throw AdapterSpecError(file: directory, path: "", reason: "no adapter specs (*.yaml) in this folder")
        }
        let specs = try files.map { try AdapterSpecParser.parse(file: directory + "/" + $0) }
        return try AdapterCatalog(specs: specs, enabled: enabled, environment: environment)
    }

    public init(specs list: [AdapterSpec], enabled: Set<String>, environment: [String: String]) throws {
        var specs = [String: AdapterSpec]()
        for spec in list { specs[spec.name] = spec }
        for spec in list {
            guard let target = spec.sandboxTarget else { continue }
            guard let real = specs[target], !real.isSandbox else {
                throw AdapterSpecError(file: spec.file, path: "sandbox.renders", reason: "names \(target), which is not a real adapter in this folder")
            }
            guard real.channel == spec.channel else {
                throw AdapterSpecError(file: spec.file, path: "channel", reason: "must match the channel of \(target) (\(real.channel.rawValue))")
            }
        }
        var adapters = [String: ResolvedAdapter]()
        for name in enabled.sorted() {
            guard let spec = specs[name] else {
                throw AdapterSpecError(file: name, path: "", reason: "no adapter spec named \(name) (known: \(specs.keys.sorted().joined(separator: ", ")))")
            }
            adapters[name] = try ResolvedAdapter(spec: spec, specs: specs, environment: environment)
        }
        self.specs = specs
        self.adapters = adapters
    }

    public subscript(name: String) -> ResolvedAdapter? { adapters[name] }
}

/// An adapter ready to render: its settings hold real values. A sandbox adapter carries the real spec
/// it renders, with placeholder credentials.
public struct ResolvedAdapter: Sendable {
    public let spec: AdapterSpec
    /// The spec whose request is rendered (the spec itself, or a sandbox's target).
    public let renders: AdapterSpec
    let settings: [String: String]

    /// How long one provider call may take (the spec's `timeout_ms`).
    var callTimeoutMs: Int64 {
        switch renders.kind {
        case .http(let h): Int64(h.timeoutMs)
        case .smtp(let m): Int64(m.timeoutMs)
        case .sandbox: 1_000
        }
    }

    public init(spec: AdapterSpec, specs: [String: AdapterSpec], environment: [String: String]) throws {
        self.spec = spec
        if case .sandbox(let sandbox) = spec.kind {
            guard let target = specs[sandbox.renders] else {
                throw AdapterSpecError(file: spec.file, path: "sandbox.renders", reason: "names an unknown adapter")
            }
            renders = target
            var values = [String: String]()
            for (key, source) in target.settings {
                if let v = sandbox.settings[key] {
                    values[key] = v
                } else if case .text(let t) = source, let v = try? Interpolation.expand(t, env: [:], path: key) {
                    values[key] = v  // the spec's default, never the environment's (the sandbox must stay local)
                } else {
                    values[key] = "sandbox-\(key)"
                }
            }
            settings = values
        } else {
            renders = spec
            var values = [String: String]()
            // In key order, so the error for several missing variables is always the same one.
            for (key, source) in spec.settings.sorted(by: { $0.key < $1.key }) {
                switch source {
                case .text(let t):
                    do { values[key] = try Interpolation.expand(t, env: environment, path: key) } catch let e as ConfigError {
                        throw AdapterSpecError(file: spec.file, path: "settings.\(key)", reason: e.reason)
                    }
                case .env(let name):
                    guard let v = environment[name], !v.isEmpty else {
                        throw AdapterSpecError(file: spec.file, path: "settings.\(key)", reason: "environment variable \(name) is not set")
                    }
                    values[key] = v
                }
            }
            settings = values
        }
    }
}
