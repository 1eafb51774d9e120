import CQREncode

/// A QR code drawn as a PNG, by libqrencode (error correction M, 8-bit mode: what WeChat's own
/// `showqrcode` images and phone scanners read). The image is 1-bit greyscale, black on white, with
/// the quiet zone the standard asks for; stored (uncompressed) deflate keeps the encoder small, and a
/// poster-sized code is still only a few kilobytes.
public enum QRCodePNG {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// - Parameters:
    ///   - text: what the code holds (WeChat: the ticket's `url`); at most 2,000 bytes.
    ///   - scale: pixels per module (1-32).
    ///   - border: quiet-zone width in modules (the standard: 4).
    public static func render(_ text: String, scale: Int = 8, border: Int = 4) throws -> [UInt8] {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= 2_000 else { throw Failure(description: "QR text must be 1-2000 bytes") }
        guard (1...32).contains(scale), (0...16).contains(border) else { throw Failure(description: "scale 1-32, border 0-16") }
        let modules: [[Bool]] = try bytes.withUnsafeBufferPointer { buf in
            guard let code = scrm_qr_encode(buf.baseAddress, Int32(buf.count)) else { throw Failure(description: "the text does not fit a QR code") }
            defer { QRcode_free(code) }
            let width = Int(code.pointee.width)
            return (0..<width).map { y in (0..<width).map { x in code.pointee.data[y * width + x] & 1 == 1 } }
        }
        return PNGWriter.monochrome(modules: modules, scale: scale, border: border)
    }
}

/// The few parts of PNG a black-and-white image needs: signature, IHDR, one IDAT of stored deflate
/// blocks in a zlib stream (Adler-32), IEND; each chunk with its CRC-32.
enum PNGWriter {
    static func monochrome(modules: [[Bool]], scale: Int, border: Int) -> [UInt8] {
        let side = (modules.count + 2 * border) * scale
        let rowBytes = (side + 7) / 8
        var raw = [UInt8]()
        raw.reserveCapacity((rowBytes + 1) * side)
        for py in 0..<side {
            raw.append(0)  // filter: none
            var row = [UInt8](repeating: 0xFF, count: rowBytes)  // 1 = white
            let my = py / scale - border
            if my >= 0, my < modules.count {
                for px in 0..<side {
                    let mx = px / scale - border
                    if mx >= 0, mx < modules.count, modules[my][mx] { row[px >> 3] &= ~(0x80 >> UInt8(px & 7)) }
                }
            }
            raw += row
        }
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var ihdr = bigEndian(UInt32(side)) + bigEndian(UInt32(side))
        ihdr += [1, 0, 0, 0, 0]  // bit depth 1, greyscale, deflate, adaptive filtering, no interlace
        chunk("IHDR", ihdr, into: &png)
        chunk("IDAT", zlibStored(raw), into: &png)
        chunk("IEND", [], into: &png)
        return png
    }

    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let n = min(65_535, data.count - offset)
            let final: UInt8 = offset + n == data.count ? 1 : 0
            out.append(final)
            out += [UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            out += data[offset..<offset + n]
            offset += n
        } while offset < data.count
        return out + bigEndian(adler32(data))
    }

    static func chunk(_ type: String, _ data: [UInt8], into png: inout [UInt8]) {
        let typed = Array(type.utf8) + data
        png += bigEndian(UInt32(data.count)) + typed + bigEndian(crc32(typed))
    }

    static func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }

    static func adler32(_ data: [UInt8]) -> UInt32 {
        var a: UInt32 = 1
        var b: UInt32 = 0
        for byte in data {
            a = (a + UInt32(byte)) % 65_521
            b = (b + a) % 65_521
        }
        return b << 16 | a
    }

    static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func crc32(_ data: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for byte in data { c = crcTable[Int((c ^ UInt32(byte)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}
