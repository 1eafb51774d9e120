import CCurl
import Foundation

/// What a finished transfer produced.
struct CurlOutcome {
    let status: Int
    let headers: [(String, String)]
    let body: [UInt8]
}

/// One curl easy handle and the buffers of the transfer it is running. Owned and touched only by the
/// `CurlDriver` thread; reset and reused between transfers so that setup stays cheap.
final class CurlEasy {
    let handle: UnsafeMutableRawPointer  // CURL*
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private var recipientList: UnsafeMutablePointer<curl_slist>?
    private var upload: [UInt8] = []
    private var uploadOffset = 0
    private var maxResponseBytes = 0
    fileprivate var responseBody: [UInt8] = []
    fileprivate var responseHeaders: [(String, String)] = []
    fileprivate var overflowed = false
    /// libcurl's detailed message for a failed transfer (CURLOPT_ERRORBUFFER), e.g. "RCPT failed: 550".
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)

    /// The id of the job running on this handle and how to report its end.
    var jobId: UInt64 = 0
    var complete: ((Result<CurlOutcome, TransportError>) -> Void)?

    init?() {
        guard let h = curl_easy_init() else { return nil }
        handle = h
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    }

    deinit {
        freeLists()
        curl_easy_cleanup(handle)
        errorBuffer.deallocate()
    }

    private func freeLists() {
        curl_slist_free_all(headerList)
        curl_slist_free_all(recipientList)
        headerList = nil
        recipientList = nil
    }

    /// Back to a blank handle (the multi handle keeps the connections).
    func reset() {
        curl_easy_reset(handle)
        freeLists()
        upload = []
        uploadOffset = 0
        responseBody = []
        responseHeaders = []
        overflowed = false
        complete = nil
    }

    private func setCommon(timeoutMs: Int, connectTimeoutMs: Int, maxResponseBytes: Int, userAgent: String) {
        self.maxResponseBytes = maxResponseBytes
        let me = Unmanaged.passUnretained(self).toOpaque()
        _ = scrm_curl_setopt_pointer(handle, CURLOPT_PRIVATE, me)
        errorBuffer[0] = 0
        _ = scrm_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorBuffer)
        _ = scrm_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        _ = scrm_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, timeoutMs)
        _ = scrm_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, min(connectTimeoutMs, timeoutMs))
        _ = scrm_curl_setopt_string(handle, CURLOPT_USERAGENT, userAgent)
        _ = scrm_curl_setopt_callback(handle, CURLOPT_WRITEFUNCTION, { data, size, count, user in
            let easy = Unmanaged<CurlEasy>.fromOpaque(user!).takeUnretainedValue()
            let n = size * count
            if easy.responseBody.count + n > easy.maxResponseBytes {
                easy.overflowed = true
                return 0  // aborts the transfer with CURLE_WRITE_ERROR
            }
            easy.responseBody.append(contentsOf: UnsafeRawBufferPointer(start: data, count: n))
            return n
        })
        _ = scrm_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, me)
    }

    func configure(http request: HTTPRequest, connectTimeoutMs: Int, maxResponseBytes: Int, userAgent: String) {
        setCommon(timeoutMs: request.timeoutMs, connectTimeoutMs: connectTimeoutMs, maxResponseBytes: maxResponseBytes, userAgent: userAgent)
        _ = scrm_curl_setopt_string(handle, CURLOPT_URL, request.url)
        _ = scrm_curl_setopt_long(handle, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS))
        _ = scrm_curl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https")
        _ = scrm_curl_setopt_string(handle, CURLOPT_ACCEPT_ENCODING, "")
        for (name, value) in request.headers { headerList = curl_slist_append(headerList, "\(name): \(value)") }
        headerList = curl_slist_append(headerList, "Expect:")
        _ = scrm_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList)
        _ = scrm_curl_setopt_callback(handle, CURLOPT_HEADERFUNCTION, { data, size, count, user in
            let easy = Unmanaged<CurlEasy>.fromOpaque(user!).takeUnretainedValue()
            let n = size * count
            // Bytes, not Foundation: this runs for every header of every response on the driver thread.
            let bytes = UnsafeRawBufferPointer(start: data, count: n)
            if n >= 5, bytes[0] == 0x48, bytes[1] == 0x54, bytes[2] == 0x54, bytes[3] == 0x50, bytes[4] == 0x2F {  // "HTTP/"
                easy.responseHeaders = []  // a new response (after 100 Continue or an interim answer)
            } else if let colon = bytes.firstIndex(of: 0x3A) {
                func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0D || b == 0x0A }
                var start = colon + 1
                var end = n
                while start < end, isSpace(bytes[start]) { start += 1 }
                while end > start, isSpace(bytes[end - 1]) { end -= 1 }
                easy.responseHeaders.append((
                    String(decoding: UnsafeRawBufferPointer(rebasing: bytes[..<colon]), as: UTF8.self),
                    String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
                ))
            }
            return n
        })
        _ = scrm_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, Unmanaged.passUnretained(self).toOpaque())
        switch request.method {
        case "GET": _ = scrm_curl_setopt_long(handle, CURLOPT_HTTPGET, 1)
        case "HEAD": _ = scrm_curl_setopt_long(handle, CURLOPT_NOBODY, 1)
        default: _ = scrm_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, request.method)
        }
        if !request.body.isEmpty || ["POST", "PUT", "PATCH"].contains(request.method) {
            _ = scrm_curl_setopt_size(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.body.count))
            var body = request.body
            if body.isEmpty { body = [0] }  // COPYPOSTFIELDS needs a valid pointer; the size above says 0
            body.withUnsafeMutableBytes { raw in _ = scrm_curl_setopt_pointer(handle, CURLOPT_COPYPOSTFIELDS, raw.baseAddress!) }
        }
    }

    func configure(mail: MailEnvelope, connectTimeoutMs: Int, userAgent: String) {
        setCommon(timeoutMs: mail.timeoutMs, connectTimeoutMs: connectTimeoutMs, maxResponseBytes: 64 * 1024, userAgent: userAgent)
        _ = scrm_curl_setopt_string(handle, CURLOPT_URL, mail.server)
        _ = scrm_curl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "smtp,smtps")
        switch mail.security {
        case .none: _ = scrm_curl_setopt_long(handle, CURLOPT_USE_SSL, Int(CURLUSESSL_NONE.rawValue))
        case .startTLS, .implicitTLS: _ = scrm_curl_setopt_long(handle, CURLOPT_USE_SSL, Int(CURLUSESSL_ALL.rawValue))
        }
        if let user = mail.username { _ = scrm_curl_setopt_string(handle, CURLOPT_USERNAME, user) }
        if let password = mail.password { _ = scrm_curl_setopt_string(handle, CURLOPT_PASSWORD, password) }
        _ = scrm_curl_setopt_string(handle, CURLOPT_MAIL_FROM, "<\(mail.from)>")
        for r in mail.recipients { recipientList = curl_slist_append(recipientList, "<\(r)>") }
        _ = scrm_curl_setopt_slist(handle, CURLOPT_MAIL_RCPT, recipientList)
        upload = mail.message
        uploadOffset = 0
        _ = scrm_curl_setopt_long(handle, CURLOPT_UPLOAD, 1)
        _ = scrm_curl_setopt_size(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(upload.count))
        _ = scrm_curl_setopt_callback(handle, CURLOPT_READFUNCTION, { buffer, size, count, user in
            let easy = Unmanaged<CurlEasy>.fromOpaque(user!).takeUnretainedValue()
            let n = min(size * count, easy.upload.count - easy.uploadOffset)
            guard n > 0, let buffer else { return 0 }
            easy.upload.withUnsafeBytes { raw in
                UnsafeMutableRawPointer(buffer).copyMemory(from: raw.baseAddress! + easy.uploadOffset, byteCount: n)
            }
            easy.uploadOffset += n
            return n
        })
        _ = scrm_curl_setopt_pointer(handle, CURLOPT_READDATA, Unmanaged.passUnretained(self).toOpaque())
    }

    /// Whether any of the request reached the connection (CURLINFO_REQUEST_SIZE counts the request
    /// bytes written, HTTP only; the upload offset covers the body).
    var requestSent: Bool {
        var requestBytes = 0
        _ = scrm_curl_getinfo_long(handle, CURLINFO_REQUEST_SIZE, &requestBytes)
        return requestBytes > 0 || uploadOffset > 0
    }

    /// libcurl's own message for the failure, with the detail when it gave one ("Failed sending data
    /// to the peer: RCPT failed: 550"): SMTP refusals say at which step the server refused.
    private func detail(_ code: CURLcode) -> String {
        let general = String(cString: curl_easy_strerror(code))
        let specific = String(cString: errorBuffer)
        return specific.isEmpty || specific == general ? general : "\(general): \(specific)"
    }

    /// The outcome once libcurl reports the transfer done with `code`.
    func outcome(_ code: CURLcode) -> Result<CurlOutcome, TransportError> {
        var status = 0
        _ = scrm_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        guard code == CURLE_OK else {
            let kind: TransportError.Kind
            switch code {
            case CURLE_OPERATION_TIMEDOUT: kind = .timeout
            case CURLE_WRITE_ERROR where overflowed: kind = .tooLarge
            case CURLE_LOGIN_DENIED: kind = .refused
            default: kind = status >= 400 ? .refused : .network
            }
            return .failure(
                TransportError(
                    kind: kind, curlCode: Int(code.rawValue), protocolCode: status, message: detail(code),
                    requestSent: requestSent))
        }
        return .success(CurlOutcome(status: status, headers: responseHeaders, body: responseBody))
    }
}
