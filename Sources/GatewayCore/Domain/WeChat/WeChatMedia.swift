import GatewayCrypto

/// A temporary media file for WeChat (`media/upload`): an image for image messages and replies, or a
/// thumb for mini-program cards. WeChat keeps temporary media 3 days; the gateway caches the media id
/// per account and content hash for a little less, so the same picture is uploaded once.
public enum WeChatMedia {
    public enum Kind: String, Sendable, CaseIterable {
        case image, thumb

        /// WeChat's size limits: images 10 MB, thumbs 64 KB.
        public var maxBytes: Int { self == .image ? 10 * 1024 * 1024 : 64 * 1024 }
        /// Formats WeChat takes: images PNG, JPEG or GIF; thumbs JPEG.
        public var formats: [Format] { self == .image ? [.jpeg, .png, .gif] : [.jpeg] }
    }

    public enum Format: String, Sendable {
        case jpeg, png, gif

        public var contentType: String { "image/\(rawValue)" }
        public var fileExtension: String { self == .jpeg ? "jpg" : rawValue }
    }

    /// WeChat keeps temporary media 3 days.
    public static let lifetimeMs: Int64 = 3 * 86_400_000
    /// The cache forgets a media id an hour before WeChat does.
    public static let cacheMs: Int64 = lifetimeMs - 3_600_000

    /// The format the bytes are in (by their magic numbers), if WeChat takes it at all.
    public static func sniff(_ bytes: [UInt8]) -> Format? {
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if bytes.starts(with: Array("GIF87a".utf8)) || bytes.starts(with: Array("GIF89a".utf8)) { return .gif }
        return nil
    }

    /// Why WeChat would refuse the file, or nil.
    public static func problem(_ bytes: [UInt8], kind: Kind) -> String? {
        guard !bytes.isEmpty else { return "the body is empty: send the file's bytes" }
        guard bytes.count <= kind.maxBytes else { return "a \(kind.rawValue) is at most \(kind.maxBytes / 1024) KB" }
        guard let format = sniff(bytes), kind.formats.contains(format) else {
            return "a \(kind.rawValue) is \(kind.formats.map { $0.rawValue.uppercased() }.joined(separator: ", ")) (by its content)"
        }
        return nil
    }

    /// The cache key's hash: SHA-256 of the bytes, hex.
    public static func contentHash(_ bytes: [UInt8]) -> String { Hex.encode(Digest.sha256(bytes)) }

    /// A multipart/form-data body with the one `media` part WeChat reads.
    public static func multipart(_ bytes: [UInt8], format: Format, boundary: String) -> [UInt8] {
        var body = Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"media\"; filename=\"media.\(format.fileExtension)\"\r\n".utf8)
        body += Array("Content-Type: \(format.contentType)\r\n\r\n".utf8)
        body += bytes
        body += Array("\r\n--\(boundary)--\r\n".utf8)
        return body
    }
}
