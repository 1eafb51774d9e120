import CCurl
import Dispatch

/// An outbound HTTP request.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(String, String)]
    public var body: [UInt8]
    public var timeoutMs: Int

    public init(method: String = "GET", url: String, headers: [(String, String)] = [], body: [UInt8] = [], timeoutMs: Int = 10_000) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeoutMs = timeoutMs
    }
}

public struct HTTPResponse: Sendable {
    public let status: Int
    public let headers: [(String, String)]
    public let body: [UInt8]

    public var text: String { String(decoding: body, as: UTF8.self) }

    public func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
}

public struct TransportError: Error, CustomStringConvertible, Sendable {
    public let code: Int
    public let message: String
    public var description: String { "transfer failed (\(code)): \(message)" }
}

/// HTTP over libcurl. Each transfer runs blocking on a Dispatch worker, never on an event loop.
/// (The outbound engine will replace this with one curl-multi driver thread; the API stays.)
public enum HTTPTransport {
    private static let initialized: Bool = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK }()

    public static func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        precondition(initialized, "curl_global_init failed")
        return try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try CurlTransfer(request).perform() })
            }
        }
    }
}

/// One easy handle and its buffers; owned by the thread that performs it.
final class CurlTransfer {
    private let handle: UnsafeMutableRawPointer  // CURL*
    private let request: HTTPRequest
    private var headerList: UnsafeMutablePointer<curl_slist>?
    fileprivate var responseBody = [UInt8]()
    fileprivate var responseHeaders = [(String, String)]()

    init(_ request: HTTPRequest) throws {
        guard let h = curl_easy_init() else { throw TransportError(code: -1, message: "curl_easy_init failed") }
        handle = h
        self.request = request
    }

    deinit {
        curl_slist_free_all(headerList)
        curl_easy_cleanup(handle)
    }

    func perform() throws -> HTTPResponse {
        _ = scrm_curl_setopt_string(handle, CURLOPT_URL, request.url)
        _ = scrm_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, request.method)
        _ = scrm_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, request.timeoutMs)
        _ = scrm_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        for (name, value) in request.headers { headerList = curl_slist_append(headerList, "\(name): \(value)") }
        headerList = curl_slist_append(headerList, "Expect:")
        _ = scrm_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList)
        let selfPointer = Unmanaged.passUnretained(self).toOpaque()
        _ = scrm_curl_setopt_write(handle, CURLOPT_WRITEFUNCTION, { data, size, count, user in
            let transfer = Unmanaged<CurlTransfer>.fromOpaque(user!).takeUnretainedValue()
            transfer.responseBody.append(contentsOf: UnsafeRawBufferPointer(start: data, count: size * count))
            return size * count
        })
        _ = scrm_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, selfPointer)
        _ = scrm_curl_setopt_write(handle, CURLOPT_HEADERFUNCTION, { data, size, count, user in
            let transfer = Unmanaged<CurlTransfer>.fromOpaque(user!).takeUnretainedValue()
            let line = String(decoding: UnsafeRawBufferPointer(start: data, count: size * count), as: UTF8.self)
            if let colon = line.firstIndex(of: ":") {
                transfer.responseHeaders.append((String(line[..<colon]), String(line[line.index(after: colon)...]).trimming([" ", "\r", "\n"])))
            }
            return size * count
        })
        _ = scrm_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, selfPointer)
        let code: CURLcode = request.body.withUnsafeBufferPointer { body in
            if !request.body.isEmpty || request.method == "POST" || request.method == "PUT" {
                _ = scrm_curl_setopt_size(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
                _ = scrm_curl_setopt_pointer(handle, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: body.baseAddress ?? UnsafePointer(bitPattern: 1)!))
            }
            return curl_easy_perform(handle)
        }
        guard code == CURLE_OK else { throw TransportError(code: Int(code.rawValue), message: String(cString: curl_easy_strerror(code))) }
        var status = 0
        _ = scrm_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return HTTPResponse(status: status, headers: responseHeaders, body: responseBody)
    }
}

extension String {
    fileprivate func trimming(_ set: Set<Character>) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
