-- wrk driver: each thread reads its share of pre-built requests (path TAB body per line) and sends
-- each once; when a thread runs out it stops (a repeat would be a replay, not a stored webhook).
local file = os.getenv("BENCH_REQUESTS")
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")
  paths, bodies = {}, {}
  local n = 0
  for line in io.lines(file) do
    if n % nthreads == id then
      local tab = line:find("\t", 1, true)
      paths[#paths + 1] = line:sub(1, tab - 1)
      bodies[#bodies + 1] = line:sub(tab + 1)
    end
    n = n + 1
  end
  i = 0
  headers = { ["Content-Type"] = "text/xml" }
end

function request()
  i = i + 1
  if i > #paths then
    wrk.thread:stop()
    i = #paths
  end
  return wrk.format("POST", paths[i], headers, bodies[i])
end

function done(summary, latency, requests)
  local non2xx = summary.errors.status or 0
  io.write(string.format("RESULT requests=%d non2xx=%d seconds=%.3f p50_ms=%.2f p99_ms=%.2f\n",
    summary.requests, non2xx, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
