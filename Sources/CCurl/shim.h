#ifndef SCRM_CCURL_SHIM_H
#define SCRM_CCURL_SHIM_H
// libcurl for the HTTPTransport module only. curl_easy_setopt, curl_easy_getinfo and curl_multi_setopt
// are variadic, which Swift cannot call: one typed wrapper per argument type.
#include <curl/curl.h>

typedef size_t (*scrm_curl_data_cb)(char *ptr, size_t size, size_t nmemb, void *userdata);

static inline CURLcode scrm_curl_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode scrm_curl_setopt_string(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode scrm_curl_setopt_pointer(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode scrm_curl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode scrm_curl_setopt_callback(CURL *h, CURLoption o, scrm_curl_data_cb v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode scrm_curl_setopt_size(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode scrm_curl_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode scrm_curl_getinfo_pointer(CURL *h, CURLINFO i, void **v) { return curl_easy_getinfo(h, i, v); }
static inline CURLMcode scrm_curl_multi_setopt_long(CURLM *m, CURLMoption o, long v) { return curl_multi_setopt(m, o, v); }

// CURLMsg.data is a union; Swift reads it through these.
static inline CURL *scrm_curl_msg_handle(const CURLMsg *m) { return m->easy_handle; }
static inline int scrm_curl_msg_is_done(const CURLMsg *m) { return m->msg == CURLMSG_DONE; }
static inline CURLcode scrm_curl_msg_result(const CURLMsg *m) { return m->data.result; }
#endif
