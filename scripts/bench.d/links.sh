# scripts/bench links (sourced by scripts/bench): one gateway answering tracked-link clicks.
source scripts/bench.d/common.sh

bench_links() {
  for p in scrm-gateway scrm-bench; do swift build -c release --product "$p" >/dev/null; done
  local bin work rport gport secret n out clicks hz g0 r0 g1 r1 rpid
  bench_setup
  trap bench_cleanup RETURN
  secret="bench-link-secret-$RANDOM$RANDOM"
  n="${BENCH_LINK_MESSAGES:-200000}"
  "$bin/scrm-bench" links-seed --redis "redis://127.0.0.1:$rport" --secret "$secret" --public-url "http://127.0.0.1:$gport" \
    --messages "$n" --out "$work/tokens.txt" >/dev/null
  SCRM_REDIS_URL="redis://127.0.0.1:$rport" SCRM_PORT="$gport" SCRM_HOST=127.0.0.1 SCRM_LOG_LEVEL=warning SCRM_LINK_SECRET="$secret" \
    SCRM_PUBLIC_URL="http://127.0.0.1:$gport" SCRM_REDIS_CONNECTIONS=8 "$bin/scrm-gateway" >"$work/gateway.log" 2>&1 & gw=$!
  for _ in $(seq 100); do curl -sf "localhost:$gport/readyz" >/dev/null && break; sleep 0.1; done
  # A warm-up pass, then the measured run.
  BENCH_LINK_TOKENS="$work/tokens.txt" wrk -t2 -c"$conns" -d2s -s scripts/bench.d/links.lua "http://127.0.0.1:$gport" >/dev/null
  rpid=$(redis_pid "$rport")
  hz=$(getconf CLK_TCK)
  g0=$(cpu_ticks "$gw"); r0=$(cpu_ticks "$rpid")
  out=$(BENCH_LINK_TOKENS="$work/tokens.txt" wrk -t2 -c"$conns" -d"${secs}s" -s scripts/bench.d/links.lua "http://127.0.0.1:$gport" | grep RESULT)
  g1=$(cpu_ticks "$gw"); r1=$(cpu_ticks "$rpid")
  clicks=$(redis-cli -p "$rport" eval "local t = 0 for _, k in ipairs(redis.call('KEYS', 'camp:{*}:stats')) do t = t + tonumber(redis.call('HGET', k, 'clicks') or '0') end return t" 0)
  local requests seconds
  requests=$(field requests "$out"); seconds=$(field seconds "$out")
  echo "links benchmark: $(nproc) cores, wrk -t2 -c$conns -d${secs}s against GET /l/{token}; $n tracked messages; gateway, Redis (AOF everysec) and wrk share the machine"
  printf "%-52s %12s\n" "redirects per second (302)" "$(echo "$requests / $seconds" | bc)"
  printf "%-52s %12s\n" "latency p50 / p99" "$(field p50_ms "$out") / $(field p99_ms "$out") ms"
  printf "%-52s %12s\n" "errors (non-3xx, connect, timeout)" "$(field errors "$out")"
  printf "%-52s %12s\n" "clicks counted (warm-up and run, repeats excluded)" "$clicks"
  printf "%-52s %12s\n" "gateway CPU per redirect (us)" "$(echo "($g1 - $g0) * 1000000 / $hz / $requests" | bc)"
  printf "%-52s %12s\n" "Redis CPU per redirect (us)" "$(echo "($r1 - $r0) * 1000000 / $hz / $requests" | bc)"
  printf "%-52s %12s\n" "gateway peak RSS" "$(( $(awk '/VmHWM/{print $2}' "/proc/$gw/status") / 1024 )) MB"
}
