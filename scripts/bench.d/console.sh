# scripts/bench console (sourced by scripts/bench): every console page with BENCH_CONSOLE_CUSTOMERS
# (1,000,000) customers in Redis, signed in as an admin: server time p50/p99 per page from the
# Server-Timing header (the page's API calls and its rendering), BENCH_CONSOLE_REQUESTS (50) each.
source scripts/bench.d/common.sh

bench_console() {
  for p in scrm-gateway scrm-bench; do swift build -c release --product "$p" >/dev/null; done
  local bin work rport gport token n out
  bench_setup
  trap bench_cleanup RETURN
  token="bench-admin-token-$RANDOM$RANDOM"
  n="${BENCH_CONSOLE_CUSTOMERS:-1000000}"
  SCRM_REDIS_URL="redis://127.0.0.1:$rport" SCRM_PORT="$gport" SCRM_HOST=127.0.0.1 SCRM_LOG_LEVEL=warning SCRM_ADMIN_TOKEN="$token" \
    SCRM_REDIS_CONNECTIONS=8 "$bin/scrm-gateway" >"$work/gateway.log" 2>&1 & gw=$!
  for _ in $(seq 100); do curl -sf "localhost:$gport/readyz" >/dev/null && break; sleep 0.1; done
  echo "console benchmark: $(nproc) cores; $n customers; gateway, Redis (AOF everysec) and the driver share the machine"
  out=$("$bin/scrm-bench" console --redis "redis://127.0.0.1:$rport" --gateway "http://127.0.0.1:$gport" --token "$token" \
    --customers "$n" --requests "${BENCH_CONSOLE_REQUESTS:-50}" | tee /dev/stderr | grep RESULT)
  printf "%-52s %9s %9s\n" "page (server time, ms)" "p50" "p99"
  while read -r line; do
    printf "%-52s %9s %9s\n" "$(sed -E 's/.*page=([^ ]+).*/\1/' <<<"$line")" "$(field p50_ms "$line")" "$(field p99_ms "$line")"
  done <<<"$out"
  printf "%-52s %12s\n" "gateway peak RSS" "$(( $(awk '/VmHWM/{print $2}' "/proc/$gw/status") / 1024 )) MB"
}
