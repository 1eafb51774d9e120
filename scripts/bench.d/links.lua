-- wrk: GET /l/{token}, a random token from the file the seed wrote (BENCH_LINK_TOKENS), as a
-- browser would (a User-Agent that is not a link scanner). BENCH_LINK_METHOD=HEAD measures the
-- redirect without recording the click (HEAD is never counted).
local tokens = {}
local method = os.getenv("BENCH_LINK_METHOD") or "GET"

function init(args)
  for line in io.lines(os.getenv("BENCH_LINK_TOKENS")) do tokens[#tokens + 1] = line end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end

function request()
  return wrk.format(method, "/l/" .. tokens[math.random(#tokens)], { ["User-Agent"] = "Mozilla/5.0 (iPhone) MicroMessenger/8.0" })
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d errors=%d seconds=%.3f p50_ms=%.2f p99_ms=%.2f\n",
    summary.requests, (summary.errors.status or 0) + (summary.errors.connect or 0) + (summary.errors.read or 0) + (summary.errors.timeout or 0),
    summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
