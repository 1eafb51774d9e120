#ifndef SCRM_CHIREDIS_SHIM_H
#define SCRM_CHIREDIS_SHIM_H
// hiredis 0.14 (Debian bookworm) for the RedisClient module only. Typed wrappers: redisGetReply takes a
// void**, redisAppendCommandArgv a const char**, timeouts a struct timeval by value, and errstr is a
// fixed char array Swift sees as a tuple. We never use the variadic redisCommand.
#include <hiredis/hiredis.h>
#include <sys/time.h>

static inline redisContext *scrm_redis_connect(const char *host, int port, long timeoutMs) {
    struct timeval tv = { timeoutMs / 1000, (timeoutMs % 1000) * 1000 };
    return redisConnectWithTimeout(host, port, tv);
}

static inline redisContext *scrm_redis_connect_unix(const char *path, long timeoutMs) {
    struct timeval tv = { timeoutMs / 1000, (timeoutMs % 1000) * 1000 };
    return redisConnectUnixWithTimeout(path, tv);
}

static inline int scrm_redis_set_timeout(redisContext *c, long timeoutMs) {
    struct timeval tv = { timeoutMs / 1000, (timeoutMs % 1000) * 1000 };
    return redisSetTimeout(c, tv);
}

static inline int scrm_redis_append_argv(redisContext *c, int argc, const char **argv, const size_t *argvlen) {
    return redisAppendCommandArgv(c, argc, argv, argvlen);
}

/// Reads (and first flushes) one reply. Returns NULL with c->err set on I/O or protocol errors.
static inline redisReply *scrm_redis_get_reply(redisContext *c) {
    void *reply = NULL;
    if (redisGetReply(c, &reply) != REDIS_OK) return NULL;
    return (redisReply *)reply;
}

static inline int scrm_redis_err(const redisContext *c) { return c->err; }
static inline const char *scrm_redis_errstr(const redisContext *c) { return c->errstr; }

static inline int scrm_reply_type(const redisReply *r) { return r->type; }
static inline long long scrm_reply_integer(const redisReply *r) { return r->integer; }
static inline const char *scrm_reply_str(const redisReply *r) { return r->str; }
static inline size_t scrm_reply_len(const redisReply *r) { return r->len; }
static inline size_t scrm_reply_elements(const redisReply *r) { return r->elements; }
static inline const redisReply *scrm_reply_element(const redisReply *r, size_t i) { return r->element[i]; }

enum {
    SCRM_REPLY_STRING = REDIS_REPLY_STRING,
    SCRM_REPLY_ARRAY = REDIS_REPLY_ARRAY,
    SCRM_REPLY_INTEGER = REDIS_REPLY_INTEGER,
    SCRM_REPLY_NIL = REDIS_REPLY_NIL,
    SCRM_REPLY_STATUS = REDIS_REPLY_STATUS,
    SCRM_REPLY_ERROR = REDIS_REPLY_ERROR,
};
#endif
