#ifndef SCRM_CQRENCODE_SHIM_H
#define SCRM_CQRENCODE_SHIM_H
#include <qrencode.h>

/// A QR symbol for a byte string at error-correction level M (case-sensitive, 8-bit mode), or NULL.
static inline QRcode *scrm_qr_encode(const unsigned char *data, int length) {
    return QRcode_encodeData(length, data, 0, QR_ECLEVEL_M);
}
#endif
