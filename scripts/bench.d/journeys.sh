# scripts/bench journeys (sourced by scripts/bench): one gateway running journey steps.
source scripts/bench.d/common.sh

bench_journeys() {
  for p in scrm-gateway scrm-bench; do swift build -c release --product "$p" >/dev/null; done
  local bin work rport gport token out rpid n due burst
  bench_setup
  trap bench_cleanup RETURN
  token="bench-admin-token-$RANDOM$RANDOM"
  n="${BENCH_JOURNEY_ENROLLED:-1000000}"; due="${BENCH_JOURNEY_DUE:-100000}"; burst="${BENCH_JOURNEY_BURST:-20000}"
  SCRM_REDIS_URL="redis://127.0.0.1:$rport" SCRM_PORT="$gport" SCRM_HOST=127.0.0.1 SCRM_LOG_LEVEL=warning SCRM_ADMIN_TOKEN="$token" \
    SCRM_REDIS_CONNECTIONS=8 SCRM_QUIET_START=00:00 SCRM_QUIET_END=00:00 SCRM_SMS_REQUIRE_OPT_IN=false "$bin/scrm-gateway" >"$work/gateway.log" 2>&1 & gw=$!
  for _ in $(seq 100); do curl -sf "localhost:$gport/readyz" >/dev/null && break; sleep 0.1; done
  rpid=$(redis_pid "$rport")
  echo "journeys benchmark: $(nproc) cores; $n enrolled, $burst due at one moment, $due due over one minute (wait, SMS reminder to the sandbox, wait a week); gateway, Redis (AOF everysec) and the driver share the machine"
  out=$("$bin/scrm-bench" journeys --redis "redis://127.0.0.1:$rport" --gateway "http://127.0.0.1:$gport" --token "$token" \
    --enrolled "$n" --due "$due" --burst "$burst" --gateway-pid "$gw" --redis-pid "$rpid" | tee /dev/stderr | grep RESULT)
  printf "%-52s %12s\n" "step executions per second ($burst due at once)" "$(field steps_per_s "$out")"
  printf "%-52s %12s\n" "timer lateness p50 / p99 ($due due in one minute)" "$(field lateness_p50_ms "$out") / $(field lateness_p99_ms "$out") ms"
  printf "%-52s %12s\n" "Redis memory per enrolled customer" "$(field bytes_per_enrolled "$out") B"
  printf "%-52s %12s\n" "gateway / Redis CPU per step, burst (us)" "$(field burst_gw_us "$out") / $(field burst_rd_us "$out")"
  printf "%-52s %12s\n" "gateway / Redis CPU per step, whole run (us)" "$(field run_gw_us "$out") / $(field run_rd_us "$out")"
  printf "%-52s %12s\n" "gateway peak RSS" "$(( $(awk '/VmHWM/{print $2}' "/proc/$gw/status") / 1024 )) MB"
}
