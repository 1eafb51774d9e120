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
  trap 'redis-cli -p "$rport" shutdown nosave >/dev/null 2>&1; stop_redis_cluster "$cdir"; sleep 0.5; rm -rf "$work"' RETURN
  echo "cluster benchmark: $(nproc) cores; the Redis client only (the gateway's data model does not run on a cluster yet);"
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
}
