# scripts/bench cluster (sourced by scripts/bench): the Redis client on one Redis and on a 3-master cluster.
source scripts/bench.d/common.sh

# Sum of the CPU ticks of the redis-servers on the given ports.
redis_ticks() {
  local total=0 pid
  for port in "$@"; do
    pid=$(redis_pid "$port")
    total=$((total + $(cpu_ticks "$pid")))
  done
  echo "$total"
}

# One run: $1 label, $2 scrm-bench target arguments, then the Redis ports to measure.
cluster_run() {
  local label="$1" target="$2" r0 r1 out ops
  shift 2
  r0=$(redis_ticks "$@")
  out=$("$bin/scrm-bench" redis-load $target --seconds "$secs" --workers "$conns" --customers "$customers" --predict "${predict:-}")
  r1=$(redis_ticks "$@")
  ops=$(field ops "$(grep '^RESULT' <<<"$out")")
  printf "%-28s %12s %14s %14s\n" "$label" "$(field ops_per_s "$(grep '^RESULT' <<<"$out")")" "$(field client_us "$(grep '^RESULT' <<<"$out")")" \
    "$(echo "scale=1; ($r1 - $r0) * 1000000 / $(getconf CLK_TCK) / $ops" | bc)"
  last_out="$out"
}

bench_cluster() {
  swift build -c release --product scrm-bench >/dev/null
  local bin work rport cdir ports customers last_out predict=""
  bin="$(swift build -c release --show-bin-path)"
  work="$(mktemp -d)"
  customers="${BENCH_CLUSTER_CUSTOMERS:-1000000}"
  rport=$(free_ports 1)
  redis-server --port "$rport" --bind 127.0.0.1 --dir "$work" --appendonly yes --appendfsync everysec --save "" --daemonize yes --logfile "$work/redis.log"
  for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
  cdir="$work/cluster"
  ports="$(start_redis_cluster 3 0 "$cdir")"
  trap 'kill ${gw:-} ${fk:-} 2>/dev/null; redis-cli -p "$rport" shutdown nosave >/dev/null 2>&1; for d in "$cdir" "$work/replicated" "$work/gw-cluster"; do stop_redis_cluster "$d"; done
    [ -f "$work/single/redis.pid" ] && kill "$(cat "$work/single/redis.pid")" 2>/dev/null; sleep 0.5; rm -rf "$work"' RETURN
  echo "cluster benchmark: $(nproc) cores; first the Redis client alone (the gateway follows):"
  echo "$conns workers, ${secs}s each, one single-slot FCALL per operation (HSET + LPUSH + LTRIM) over $customers customers; AOF everysec"
  printf "%-28s %12s %14s %14s\n" setup "ops/s" "client us/op" "Redis us/op"
  cluster_run "1 Redis, 4 connections" "--redis redis://127.0.0.1:$rport --connections 4" "$rport"
  local seeds
  seeds=$(tr ',' '\n' <<<"$ports" | head -2 | sed 's|^|redis://127.0.0.1:|' | paste -sd,)
  # redis.connections is per node: 4 on each of 3 masters splits the same load over 3x the connections,
  # so each carries smaller pipelines (more system calls per operation). The second row has 1 each.
  # shellcheck disable=SC2086
  cluster_run "3 masters, 4 connections each" "--cluster --redis $seeds --connections 4" $(tr ',' ' ' <<<"$ports")
  predict="10,30"
  # shellcheck disable=SC2086
  cluster_run "3 masters, 1 connection each" "--cluster --redis $seeds --connections 1" $(tr ',' ' ' <<<"$ports")
  local last_plain="$last_out"
  # The cost of redis.waitForReplicas: the same load on 3 masters with a replica each, every pipeline
  # that writes ending with WAIT for one replica, against none.
  local rdir rports rseeds
  rdir="$work/replicated"
  rports="$(start_redis_cluster 3 1 "$rdir")"
  rseeds=$(tr ',' '\n' <<<"$rports" | head -2 | sed 's|^|redis://127.0.0.1:|' | paste -sd,)
  # shellcheck disable=SC2086
  cluster_run "3+3 replicas, no WAIT" "--cluster --redis $rseeds --connections 1" $(tr ',' ' ' <<<"$rports")
  # shellcheck disable=SC2086
  cluster_run "3+3 replicas, WAIT 1 replica" "--cluster --redis $rseeds --connections 1 --wait-replicas 1" $(tr ',' ' ' <<<"$rports")
  stop_redis_cluster "$rdir"
  last_out="$last_plain"
  echo "(Redis us/op counts the replicas' CPU too; WAIT adds a round trip to the replica per pipeline, not per call)"
  echo "per master (3 masters, 1 connection each):"
  awk '/^NODE/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } ops[v["endpoint"]] = v["ops"]; keys[v["endpoint"]] = v["keys"]; n++; to += v["ops"]; tk += v["keys"] }
    END {
      mo = 0; mk = 0
      for (e in ops) {
        printf "  %-22s ops %9d (%5.1f%%)   keys %9d (%5.1f%%)\n", e, ops[e], 100 * ops[e] / to, keys[e], 100 * keys[e] / tk
        d = (ops[e] - to / n) / (to / n); if (d < 0) d = -d; if (d > mo) mo = d
        d = (keys[e] - tk / n) / (tk / n); if (d < 0) d = -d; if (d > mk) mk = d
      }
      printf "  largest deviation from the mean: ops %.1f%%, keys %.1f%% (target: within 15%%)\n", 100 * mo, 100 * mk
    }' <<<"$last_out"
  grep '^PREDICT' <<<"$last_out" | while read -r line; do
    printf "  predicted for %s masters (even slot ranges): keys within %s%% of the mean\n" "$(field masters "$line")" "$(field max_deviation_pct "$line")"
  done
  stop_redis_cluster "$cdir"
  redis-cli -p "$rport" shutdown nosave >/dev/null 2>&1
  bench_cluster_gateway
}

# Calls (every command, those run by functions included) on each of the Redis ports, since their last
# CONFIG RESETSTAT; one per line. SCAN and XINFO STREAM are left out: they are the bench's own
# counting (inbound_added), which the gateway does not do while it serves.
calls_per_node() {
  for port in "$@"; do
    redis-cli -p "$port" info commandstats | tr -d '\r' | awk -F'[:=,]' -v p="$port" '/^cmdstat_(scan|xinfo\|stream):/ { next } /^cmdstat_/ { n += $3 } END { printf "%s %d\n", p, n }'
  done
}

# "largest deviation from the mean" of the second column of per-node lines ("port value"), in %.
spread() {
  awk '{ v[NR] = $2; t += $2 } END { if (NR == 0 || t == 0) { print "-"; exit } m = t / NR; d = 0
    for (i = 1; i <= NR; i++) { x = (v[i] - m) / m; if (x < 0) x = -x; if (x > d) d = x } printf "%.1f", 100 * d }'
}

# Per-node lines ("port value") as "value (share%)" columns.
# Entries ever added to stream:inbound, summed over its partitions on every node given (a master holds
# the partitions of its slots; on one Redis the stream keeps its name).
inbound_added() {
  local port key n=0
  for port in "$@"; do
    for key in $(redis-cli -p "$port" --scan --count 1000 --pattern 'stream:inbound*' | grep -E '^stream:inbound(:\{[^}]*\})?$'); do
      n=$(( n + $(redis-cli -p "$port" xinfo stream "$key" | awk '/entries-added/{getline; print}') ))
    done
  done
  echo "$n"
}

shares() { awk '{ v[NR] = $2; p[NR] = $1; t += $2 } END { for (i = 1; i <= NR; i++) printf "  :%s %d (%.1f%%)", p[i], v[i], t ? 100 * v[i] / t : 0; print "" }'; }

# The gateway on one Redis, then on 3 masters: ingress (signed plain-text webhooks with wrk) and a
# campaign to BENCH_CLUSTER_CUSTOMERS customers (seeded through the import, previewed, planned, then
# delivered to the fake SMS provider for BENCH_FOLLOW_SECONDS), with operations and keys per master.
bench_cluster_gateway() {
  for p in scrm-gateway scrm-fakes scrm-bench; do swift build -c release --product "$p" >/dev/null; done
  local fport gport layout ports seeds env_redis out g0 g1 r0 r1 stored before after sec
  read -r fport gport <<<"$(free_ports 2)"
  cp -r adapters "$work/adapters"
  python3 - "$work/adapters/twilio-sms.yaml" <<'PY'
import re, sys
p = sys.argv[1]; s = open(p).read()
open(p, "w").write(re.sub(r"\nrate_limit:\n(  .*\n)+", "\n", s))
PY
  local token="bench-admin-token-$RANDOM$RANDOM" follow="${BENCH_FOLLOW_SECONDS:-30}"
  "$bin/scrm-bench" requests plain-text --count "$count" --followers 100000 --out "$work/requests.txt"
  echo
  echo "gateway on 1 Redis and on 3 masters (no replicas): plain-text webhooks (wrk -c$conns, ${secs}s), then a campaign to $customers"
  echo "customers (seeded through the import; SMS to a fake provider, followed ${follow}s after planning); AOF everysec"
  for layout in single cluster; do
    if [ "$layout" = single ]; then
      ports=$(free_ports 1)
      mkdir -p "$work/single"
      redis-server --port "$ports" --bind 127.0.0.1 --dir "$work/single" --appendonly yes --appendfsync everysec --save "" --daemonize yes \
        --pidfile "$work/single/redis.pid" --logfile "$work/single/redis.log"
      for _ in $(seq 50); do redis-cli -p "$ports" ping >/dev/null 2>&1 && break; sleep 0.1; done
      env_redis=(SCRM_REDIS_URL="redis://127.0.0.1:$ports" SCRM_REDIS_CLUSTER=)
      seeds="redis://127.0.0.1:$ports"
    else
      ports="$(start_redis_cluster 3 0 "$work/gw-cluster")"
      seeds=$(tr ',' '\n' <<<"$ports" | head -2 | sed 's|^|redis://127.0.0.1:|' | paste -sd,)
      env_redis=(SCRM_REDIS_CLUSTER="$seeds")
    fi
    local plist
    plist=$(tr ',' ' ' <<<"$ports")
    # A fresh fake provider per layout, so that its counts are this run's.
    "$bin/scrm-fakes" "$fport" >"$work/fakes.env" 2>&1 & fk=$!
    for _ in $(seq 100); do curl -sf -XPOST "localhost:$fport/ok" >/dev/null && break; sleep 0.1; done
    # shellcheck disable=SC1091
    source <(grep '^export' "$work/fakes.env")
    env "${env_redis[@]}" SCRM_PORT="$gport" SCRM_HOST=127.0.0.1 SCRM_LOG_LEVEL=warning SCRM_ADMIN_TOKEN="$token" SCRM_ADAPTERS_DIR="$work/adapters" \
      SCRM_SMS_ADAPTER=twilio-sms SCRM_OUTBOUND_CONCURRENCY="${BENCH_SENDERS:-128}" SCRM_QUIET_START=00:00 SCRM_QUIET_END=00:00 \
      SCRM_SMS_REQUIRE_OPT_IN=false SCRM_SCORING_RULES= "$bin/scrm-gateway" >"$work/gateway-$layout.log" 2>&1 & gw=$!
    for _ in $(seq 300); do curl -sf "localhost:$gport/readyz" >/dev/null && break; sleep 0.1; done
    echo "== $([ "$layout" = single ] && echo "1 Redis" || echo "3 masters")"
    # shellcheck disable=SC2086
    before=$(inbound_added $plist)
    # After the count above: its SCANs are not the gateway's calls.
    # shellcheck disable=SC2086
    for port in $plist; do redis-cli -p "$port" config resetstat >/dev/null; done
    g0=$(cpu_ticks "$gw"); r0=$(redis_ticks $plist)
    out=$(BENCH_REQUESTS="$work/requests.txt" BENCH_THREADS=2 wrk -t2 -c"$conns" -d"${secs}s" -s scripts/bench.d/replay.lua "http://127.0.0.1:$gport" | grep RESULT)
    g1=$(cpu_ticks "$gw"); r1=$(redis_ticks $plist)
    # shellcheck disable=SC2086
    after=$(inbound_added $plist)
    sec=$(sed -E 's/.*seconds=([0-9.]+).*/\1/' <<<"$out")
    stored=$(( after - ${before:-0} > 0 ? after - ${before:-0} : 1 ))
    printf "  ingress: %.0f stored/s, p50 %s ms, p99 %s ms, non-2xx %s; CPU per webhook: gateway %d us, Redis %d us\n" "$(echo "$stored / $sec" | bc -l)" \
      "$(sed -E 's/.*p50_ms=([0-9.]+).*/\1/' <<<"$out")" "$(sed -E 's/.*p99_ms=([0-9.]+).*/\1/' <<<"$out")" "$(sed -E 's/.*non2xx=([0-9]+).*/\1/' <<<"$out")" \
      "$(( (g1 - g0) * 1000000 / $(getconf CLK_TCK) / stored ))" "$(( (r1 - r0) * 1000000 / $(getconf CLK_TCK) / stored ))"
    # shellcheck disable=SC2086
    if [ "$layout" = cluster ]; then
      local calls
      calls=$(calls_per_node $plist)
      printf "  ingress calls per master:%s; largest deviation %s%%\n" "$(shares <<<"$calls")" "$(spread <<<"$calls")"
    fi
    # BENCH_COMMANDSTATS=1: Redis calls and µs per stored webhook by command, summed over the masters.
    # shellcheck disable=SC2086
    [ -n "${BENCH_COMMANDSTATS:-}" ] && for port in $plist; do redis-cli -p "$port" info commandstats; done | tr -d '\r' \
      | awk -F'[:=,]' -v n="$stored" '/^cmdstat_(scan|xinfo\|stream):/ { next } /^cmdstat_/ { c[substr($1, 9)] += $3; u[substr($1, 9)] += $5 }
          END { for (k in c) printf "    %-28s %6.2f calls %7.2f us\n", k, c[k] / n, u[k] / n }' | sort -k4 -rn | head -24
    # shellcheck disable=SC2086
    for port in $plist; do redis-cli -p "$port" config resetstat >/dev/null; done
    r0=$(redis_ticks $plist)
    out=$("$bin/scrm-bench" campaign --redis "$seeds" $([ "$layout" = cluster ] && echo --cluster) --gateway "http://127.0.0.1:$gport" --token "$token" \
      --fakes "http://127.0.0.1:$fport" --customers "$customers" --follow-seconds "$follow" --gateway-pid "$gw" | grep RESULT)
    r1=$(redis_ticks $plist)
    printf "  campaign: seeded in %s s; preview %s ms (%s customers); snapshot %s ms; planned in %s s; %s sent, %s/s once planned; gateway %s us per message\n" \
      "$(field seed_s "$out")" "$(field preview_ms "$out")" "$(field preview_count "$out")" "$(field snapshot_ms "$out")" "$(field plan_s "$out")" \
      "$(field sent "$out")" "$(field steady_rate "$out")" "$(field gw_us "$out")"
    printf "  fake SMS provider: %s deliveries to %s distinct recipients\n" "$(field deliveries "$out")" "$(field recipients "$out")"
    if [ "$layout" = cluster ]; then
      # shellcheck disable=SC2086
      calls=$(calls_per_node $plist)
      printf "  seeding + campaign calls per master:%s; largest deviation %s%%\n" "$(shares <<<"$calls")" "$(spread <<<"$calls")"
      local keys
      # shellcheck disable=SC2086
      keys=$(for port in $plist; do echo "$port $(redis-cli -p "$port" dbsize)"; done)
      printf "  keys per master:%s; largest deviation %s%%\n" "$(shares <<<"$keys")" "$(spread <<<"$keys")"
      local mem
      # shellcheck disable=SC2086
      mem=$(for port in $plist; do echo "$port $(redis-cli -p "$port" info memory | tr -d '\r' | awk -F: '/^used_memory:/{print $2}')"; done)
      printf "  memory per master (bytes):%s; largest deviation %s%%\n" "$(shares <<<"$mem")" "$(spread <<<"$mem")"
    fi
    kill "$gw" "$fk" 2>/dev/null; wait "$gw" "$fk" 2>/dev/null || true
    if [ "$layout" = single ]; then redis-cli -p "$ports" shutdown nosave >/dev/null 2>&1; else stop_redis_cluster "$work/gw-cluster"; fi
  done
}
