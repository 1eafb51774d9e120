import Foundation
import XCTest

/// Decrypts a safe-mode `Encrypt` value without the gateway's code: the `openssl` command line does
/// AES-256-CBC with no padding, and this file unpads (PKCS#7 to 32 bytes), reads the 4-byte length and
/// checks the appid trailer, as Tencent's samples describe. A test that decrypts our replies with it
/// fails if our cipher and our decipher agree on a mistake.
enum IndependentWeChatCrypto {
    struct Failure: Error, CustomStringConvertible { let description: String }

    static func decrypt(_ encrypt: String, encodingAESKey: String, appId: String) throws -> String {
        guard let key = Data(base64Encoded: encodingAESKey + "="), key.count == 32 else { throw Failure(description: "bad key") }
        let hex = key.map { String(format: "%02x", $0) }.joined()
        let iv = key.prefix(16).map { String(format: "%02x", $0) }.joined()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = ["enc", "-d", "-aes-256-cbc", "-nopad", "-base64", "-A", "-K", hex, "-iv", iv]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data(encrypt.utf8))
        try input.fileHandleForWriting.close()
        let plain = [UInt8](output.fileHandleForReading.readDataToEndOfFile())
        process.waitUntilExit()
        guard process.terminationStatus == 0, let pad = plain.last, (1...32).contains(Int(pad)), plain.count >= 20 + Int(pad) else {
            throw Failure(description: "openssl failed or bad padding")
        }
        guard plain.suffix(Int(pad)).allSatisfy({ $0 == pad }) else { throw Failure(description: "bad padding bytes") }
        let body = plain.dropLast(Int(pad))
        let b = Array(body)
        let length = Int(b[16]) << 24 | Int(b[17]) << 16 | Int(b[18]) << 8 | Int(b[19])
        guard 20 + length <= b.count else { throw Failure(description: "length past the end") }
        let xml = String(decoding: b[20..<20 + length], as: UTF8.self)
        let trailer = String(decoding: b[(20 + length)...], as: UTF8.self)
        guard trailer == appId else { throw Failure(description: "appid trailer \(trailer)") }
        return xml
    }
}
