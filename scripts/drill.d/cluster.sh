# scripts/drill cluster-failover | cluster-reshard (sourced by scripts/drill): a 3-master, 3-replica
# cluster on loopback, one gateway on it, webhooks at load and a campaign in progress (scrm-bench
# drill-cluster), while the drill kills a master with -9 (its replica is promoted) or moves
# DRILL_RESHARD_SLOTS (1,000) slots from one master to another. Both aim at the slot of partition 0
# of the partitioned streams (stream:inbound and the send queues; SCRM_REDIS_STREAM_PARTITIONS, 6).

# The port of the master serving slot $2, as the node on port $1 sees the cluster (migrating slots aside).
slot_master() {
  redis-cli -p "$1" cluster nodes | awk -v s="$2" '$3 ~ /master/ && $3 !~ /fail/ {
    for (i = 9; i <= NF; i++) {
      if ($i ~ /^\[/) continue
      n = split($i, r, "-"); if (n == 1) r[2] = r[1]
      if (s + 0 >= r[1] + 0 && s + 0 <= r[2] + 0) { split($2, a, "[:@]"); print a[2] }
    }
  }'
}

node_id() { redis-cli -p "$1" cluster myid; }

# Moves slots $3..$4 from the master on port $1 to the one on port $2, key by key, as
# redis-cli --cluster reshard does (IMPORTING / MIGRATING, MIGRATE, then SETSLOT NODE on every master),
# but for the range asked for: redis-cli's reshard always takes the source's lowest slots. Four
# movers share the range, one slot at a time each.
move_slots() {
  local from="$1" to="$2" first="$3" last="$4" fid tid w movers=() status=0
  fid=$(node_id "$from"); tid=$(node_id "$to")
  for w in 0 1 2 3; do
    move_slot_range "$from" "$to" "$fid" "$tid" $((first + w)) 4 "$last" &
    movers+=($!)
  done
  # Only the movers: the gateway and the load run in the background too.
  for w in "${movers[@]}"; do wait "$w" || status=1; done
  return "$status"
}

# One mover of move_slots: slots $5, $5 + $6, ... up to $7.
move_slot_range() {
  local from="$1" to="$2" fid="$3" tid="$4" s keys p
  for s in $(seq "$5" "$6" "$7"); do
    redis-cli -p "$to" cluster setslot "$s" importing "$fid" >/dev/null
    redis-cli -p "$from" cluster setslot "$s" migrating "$tid" >/dev/null
    while keys=$(redis-cli -p "$from" cluster getkeysinslot "$s" 500) && [ -n "$keys" ]; do
      # shellcheck disable=SC2086
      redis-cli -p "$from" migrate 127.0.0.1 "$to" "" 0 10000 keys $keys >/dev/null
    done
    for p in "$to" "$from" "${masters[@]}"; do redis-cli -p "$p" cluster setslot "$s" node "$tid" >/dev/null 2>&1 || true; done
  done
}

drill_cluster() {
  local what="$1" bin work cdir ports gport fport token out ok=1
  ensure_packages curl redis-tools bc
  if [ "${DRILL_BUILD:-release}" = "debug" ]; then
    bin="$ROOT/.build/debug"
  else
    for p in scrm-gateway scrm-bench scrm-fakes; do swift build -c release --product "$p" >/dev/null; done
    bin="$(swift build -c release --show-bin-path)"
  fi
  work="$(mktemp -d)"
  cdir="$work/cluster"
  ports="$(start_redis_cluster 3 1 "$cdir")"
  local masters=() all=()
  IFS=, read -r -a all <<<"$ports"
  masters=("${all[@]:0:3}")
  read -r gport fport <<<"$(free_ports 2)"
  # shellcheck disable=SC2064
  trap "kill \${gw:-} \${fk:-} \${load:-} 2>/dev/null; stop_redis_cluster '$cdir'; sleep 0.5; rm -rf '$work'" EXIT
  "$bin/scrm-fakes" "$fport" >"$work/fakes.env" 2>&1 & fk=$!
  for _ in $(seq 100); do curl -sf -XPOST "localhost:$fport/ok" >/dev/null && break; sleep 0.1; done
  # shellcheck disable=SC1091
  source <(grep '^export' "$work/fakes.env")
  # The real twilio-sms spec without its per-sender limit: the campaign's own rate paces it.
  cp -r "$ROOT/adapters" "$work/adapters"
  python3 - "$work/adapters/twilio-sms.yaml" <<'PY'
import re, sys
p = sys.argv[1]; s = open(p).read()
open(p, "w").write(re.sub(r"\nrate_limit:\n(  .*\n)+", "\n", s))
PY
  token="drill-admin-token-$RANDOM$RANDOM"
  local seeds
  seeds=$(printf 'redis://127.0.0.1:%s\n' "${masters[@]}" | paste -sd,)
  SCRM_REDIS_CLUSTER="$seeds" SCRM_PORT="$gport" SCRM_HOST=127.0.0.1 SCRM_LOG_LEVEL=error SCRM_SCORING_RULES= SCRM_ADMIN_TOKEN="$token" \
    SCRM_ADAPTERS_DIR="$work/adapters" SCRM_SMS_ADAPTER=twilio-sms SCRM_QUIET_START=00:00 SCRM_QUIET_END=00:00 SCRM_SMS_REQUIRE_OPT_IN=false \
    "$bin/scrm-gateway" >"$work/gateway.log" 2>&1 & gw=$!
  for _ in $(seq 300); do curl -sf "localhost:$gport/readyz" >/dev/null && break; sleep 0.1; done
  local n="${DRILL_RECIPIENTS:-10000}" rate="${DRILL_RATE:-250}" secs="${DRILL_SECONDS:-25}"
  echo "drill $what: $(nproc) cores; 3 masters + 3 replicas (node timeout 1 s, AOF everysec); one gateway (writes wait for a replica);"
  echo "  a campaign to $n SMS recipients at $rate/s and signed webhooks from 8 callers for $secs s"
  "$bin/scrm-bench" drill-cluster --gateway "http://127.0.0.1:$gport" --cluster "$seeds" --token "$token" --fakes "http://127.0.0.1:$fport" \
    --recipients "$n" --rate "$rate" --load-seconds "$secs" >"$work/out" 2>&1 & load=$!
  for _ in $(seq 1200); do grep -q '^SENDING' "$work/out" && break; kill -0 "$load" 2>/dev/null || break; sleep 0.1; done
  grep -q '^SENDING' "$work/out" || { cat "$work/out"; echo "FAIL: the campaign did not start sending"; return 1; }
  sleep 4
  local slot victim t0 t1 promoted="" partitions="${SCRM_REDIS_STREAM_PARTITIONS:-6}"
  # Partition 0 of every partitioned stream sits in the middle of the first 1/partitions of the slots
  # (StreamPartitions); with one partition, stream:inbound itself.
  if [ "$partitions" -gt 1 ]; then slot=$(( 16384 / (2 * partitions) )); else slot=$(redis-cli -p "${masters[0]}" cluster keyslot stream:inbound); fi
  if [ "$what" = "cluster-failover" ]; then
    victim=$(slot_master "${masters[0]}" "$slot")
    local other
    for p in "${masters[@]}"; do [ "$p" != "$victim" ] && other=$p && break; done
    t0=$(date +%s%3N)
    kill -9 "$(cat "$cdir/$victim/redis.pid")"
    for _ in $(seq 300); do
      promoted=$(slot_master "$other" "$slot")
      [ -n "$promoted" ] && [ "$promoted" != "$victim" ] && break
      promoted=""; sleep 0.05
    done
    t1=$(date +%s%3N)
    echo "  killed -9 the master on :$victim (it serves partition 0 of stream:inbound and the send queues, slot $slot); :${promoted:-none} promoted after $((t1 - t0)) ms"
    [ -n "$promoted" ] || ok=0
  else
    local from to moving before after first
    from=$(slot_master "${masters[0]}" "$slot")
    for p in "${masters[@]}"; do [ "$p" != "$from" ] && to=$p && break; done
    moving="${DRILL_RESHARD_SLOTS:-1000}"
    first=$(( slot - moving / 2 < 0 ? 0 : slot - moving / 2 ))
    before=$(redis-cli -p "$to" dbsize)
    t0=$(date +%s%3N)
    move_slots "$from" "$to" "$first" "$(( first + moving - 1 ))" 2>"$work/reshard.log" || { tail -5 "$work/reshard.log"; ok=0; }
    t1=$(date +%s%3N)
    after=$(redis-cli -p "$to" dbsize)
    [ "$(slot_master "$to" "$slot")" = "$to" ] || { echo "  slot $slot did not move"; ok=0; }
    echo "  moved slots $first..$(( first + moving - 1 )) (net $((after - before)) keys; partition 0 of the streams among them, slot $slot) from :$from to :$to under load in $((t1 - t0)) ms"
  fi
  wait "$load" || true; load=""
  out=$(grep '^RESULT' "$work/out") || { cat "$work/out"; echo FAIL; return 1; }
  f() { sed -E "s/.*[ ]$1=([^ ]+).*/\1/" <<<"$out"; }
  printf "  %-56s %s\n" "webhooks sent" "$(f webhooks)"
  printf "  %-56s %s (%s), over %s s\n" "answered otherwise than 200 (status x count)" "$(f refused)" "$(f refusals)" "$(f refused_span_s)"
  printf "  %-56s %s\n" "refusals that show internals" "$(f leaks)"
  printf "  %-56s %s sends; %s never accepted\n" "sent again as the platform retries" "$(f retried)" "$(f never_accepted)"
  printf "  %-56s %s stored, %s lost, %s stored twice\n" "webhooks accepted (200)" "$(f stored)" "$(f lost)" "$(f stored_twice)"
  printf "  %-56s %s: %s sent, %s failed\n" "campaign ($(f audience) recipients)" "$(f state)" "$(f sent)" "$(f failed)"
  printf "  %-56s %s / %s\n" "fake SMS provider: deliveries / distinct recipients" "$(f deliveries)" "$(f recipients)"
  grep '^leak:' "$work/out" || true
  # What the gateway's Redis client went through (its /metrics): redirects followed, writes no replica confirmed in time.
  local metrics
  metrics=$(curl -s "localhost:$gport/metrics")
  printf "  %-56s %s\n" "gateway: redirects followed (by kind)" \
    "$(grep '^scrm_redis_redirects_total' <<<"$metrics" | sed -E 's/.*kind="([^"]+)".* ([0-9.]+)$/\1 \2/' | awk '{ a[$1] += $2 } END { for (k in a) printf "%s %d  ", k, a[k] }')"
  printf "  %-56s %s\n" "gateway: writes no replica confirmed in time" \
    "$(grep '^scrm_redis_replica_wait_shortfalls_total' <<<"$metrics" | awk '{ n += $NF } END { print n + 0 }')"
  local a
  a=$(f audience)
  if [ "$ok" = 1 ] && [ "$(f lost)" = 0 ] && [ "$(f stored_twice)" = 0 ] && [ "$(f never_accepted)" = 0 ] && [ "$(f leaks)" = 0 ] \
     && grep -qE '^(-|(503x[0-9]+))$' <<<"$(f refusals)" && [ "$(f state)" = completed ] && [ "$(f sent)" = "$a" ] && [ "$(f failed)" = 0 ] \
     && [ "$(f deliveries)" = "$a" ] && [ "$(f recipients)" = "$a" ] && [ "$a" = "$n" ]; then
    echo "PASS: every webhook answered 200 stored once, refusals only 503 without internals, every recipient messaged exactly once"
    return 0
  fi
  # Kept for a look afterwards (the work directory goes with the cluster).
  local kept="/tmp/drill-$what-$(date +%Y%m%d-%H%M%S)"
  mkdir -p "$kept" && cp "$work/out" "$work/gateway.log" "$kept/" 2>/dev/null || true
  echo "FAIL (the load's output and the gateway log are in $kept)"; tail -30 "$work/out"; tail -20 "$work/gateway.log"; return 1
}
