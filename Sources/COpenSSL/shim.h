#ifndef SCRM_COPENSSL_SHIM_H
#define SCRM_COPENSSL_SHIM_H
// OpenSSL for the Crypto module only. The functions we use are not variadic; the wrappers below exist
// because EVP_MAX_MD_SIZE and friends are macros Swift cannot see, and to keep call sites typed.
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

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

/// ECDSA-SHA256 verify of `sig` (DER) over `msg` with a DER SubjectPublicKeyInfo public key.
/// Returns 1 valid, 0 invalid, -1 for a key that cannot be read.
static inline int scrm_ecdsa_sha256_verify(const unsigned char *pub, long pubLen, const unsigned char *msg, size_t msgLen,
                                           const unsigned char *sig, size_t sigLen) {
    const unsigned char *p = pub;
    EVP_PKEY *key = d2i_PUBKEY(NULL, &p, pubLen);
    if (key == NULL) return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
             EVP_DigestVerify(ctx, sig, sigLen, msg, msgLen) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    return ok ? 1 : 0;
}

/// A new P-256 key pair (for tests and fakes that sign like a provider): writes the DER public key and
/// the DER private key; returns 1 on success. Buffers of 512 bytes are enough.
static inline int scrm_ec_p256_generate(unsigned char *pubOut, int *pubLen, unsigned char *privOut, int *privLen) {
    EVP_PKEY *key = EVP_EC_gen("P-256");
    if (key == NULL) return 0;
    unsigned char *p = pubOut;
    *pubLen = i2d_PUBKEY(key, &p);
    unsigned char *q = privOut;
    *privLen = i2d_PrivateKey(key, &q);
    EVP_PKEY_free(key);
    return *pubLen > 0 && *privLen > 0;
}

/// ECDSA-SHA256 signature (DER) with a DER private key; returns its length, or -1.
static inline int scrm_ecdsa_sha256_sign(const unsigned char *priv, long privLen, const unsigned char *msg, size_t msgLen,
                                         unsigned char *sigOut, size_t sigCap) {
    const unsigned char *p = priv;
    EVP_PKEY *key = d2i_AutoPrivateKey(NULL, &p, privLen);
    if (key == NULL) return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t len = sigCap;
    int ok = ctx != NULL && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
             EVP_DigestSign(ctx, sigOut, &len, msg, msgLen) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    return ok ? (int)len : -1;
}
#endif
