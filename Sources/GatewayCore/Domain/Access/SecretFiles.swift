import Foundation

/// Secrets kept in files (Docker and systemd credentials, Kubernetes secrets): a config value or an
/// environment variable that reads `file:/run/secrets/NAME` is replaced by that file's content,
/// without its trailing newline.
public enum SecretFiles {
    public static let prefix = "file:/"

    /// The value itself, or the content of the file it names.
    public static func read(_ value: String, path: String) throws -> String {
        guard value.hasPrefix(prefix) else { return value }
        let file = String(value.dropFirst("file:".count))
        guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(path: path, reason: "cannot read the secret file \(file)")
        }
        var secret = Substring(text)
        while secret.last == "\n" || secret.last == "\r" { secret = secret.dropLast() }
        guard !secret.isEmpty else { throw ConfigError(path: path, reason: "the secret file \(file) is empty") }
        return String(secret)
    }

    /// The environment with every `file:` value read.
    public static func resolve(_ environment: [String: String]) throws -> [String: String] {
        var out = environment
        for (name, value) in environment where value.hasPrefix(prefix) { out[name] = try read(value, path: "$" + name) }
        return out
    }
}

/// The example tokens and keys printed in WeChat's and WeCom's documentation and in our demo config.
/// Anyone can forge callbacks for an account that uses one, so outside `SCRM_ENV=dev` the gateway
/// refuses to start with them.
public enum PublishedSecrets {
    public static let tokens: Set<String> = ["scrmdemotoken", "pamtest", "QDG6eK"]
    public static let encodingAESKeys: Set<String> = [
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    ]

    /// The config paths that hold a published secret.
    public static func uses(_ config: GatewayConfig) -> [String] {
        var found = [String]()
        for (i, a) in config.accounts.enumerated() {
            if tokens.contains(a.token) { found.append("accounts[\(i)].token (\(a.id))") }
            if let key = a.encodingAESKey, encodingAESKeys.contains(key) { found.append("accounts[\(i)].encodingAESKey (\(a.id))") }
        }
        return found
    }
}
