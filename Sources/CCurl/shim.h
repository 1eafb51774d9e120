#ifndef SCRM_CCURL_SHIM_H
#define SCRM_CCURL_SHIM_H
// libcurl for the HTTPTransport module only. curl_easy_setopt and curl_easy_getinfo are variadic, which
// Swift cannot call: one typed wrapper per argument type.
#include <curl/curl.h>

typedef size_t (*scrm_curl_write_cb)(char *ptr, size_t size, size_t nmemb, void *userdata);

static inline CURLcode scrm_curl_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode scrm_curl_setopt_string(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode scrm_curl_setopt_pointer(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode scrm_curl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode scrm_curl_setopt_write(CURL *h, CURLoption o, scrm_curl_write_cb v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode scrm_curl_setopt_size(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode scrm_curl_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
#endif
