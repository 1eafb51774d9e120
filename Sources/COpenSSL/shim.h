#ifndef SCRM_COPENSSL_SHIM_H
#define SCRM_COPENSSL_SHIM_H
// OpenSSL for the Crypto module only. The functions we use are not variadic; the wrappers below exist
// because EVP_MAX_MD_SIZE and friends are macros Swift cannot see, and to keep call sites typed.
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

static inline int scrm_evp_max_md_size(void) { return EVP_MAX_MD_SIZE; }

/// One-shot digest; returns the digest length, or -1.
static inline int scrm_digest(const EVP_MD *md, const void *data, size_t len, unsigned char *out) {
    unsigned int outLen = 0;
    if (EVP_Digest(data, len, out, &outLen, md, NULL) != 1) return -1;
    return (int)outLen;
}

/// One-shot HMAC; returns the MAC length, or -1.
static inline int scrm_hmac(const EVP_MD *md, const void *key, int keyLen, const unsigned char *data, size_t len,
                            unsigned char *out) {
    unsigned int outLen = 0;
    if (HMAC(md, key, keyLen, data, len, out, &outLen) == NULL) return -1;
    return (int)outLen;
}
#endif
