# scripts/bench import (sourced by scripts/bench): one gateway, a generated CSV uploaded with curl.
source scripts/bench.d/common.sh

bench_import() {
  swift build -c release --product scrm-gateway >/dev/null
  local bin work rport gport rows tok
  bench_setup
  trap bench_cleanup RETURN
  rows="${BENCH_IMPORT_ROWS:-1000000}"
  tok="bench-admin-token-$RANDOM$RANDOM"
  python3 - "$work/customers.csv" "$rows" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
cities = ["Shanghai", "Beijing", "Shenzhen", "Hangzhou", "Chengdu"]
with open(path, "w") as f:
    f.write("phone,email,profile.nickname,profile.city,profile.spend,tags,consent.sms\n")
    for i in range(n):
        # Every tenth row repeats an earlier customer's phone with a new email: an update that binds it.
        p = i - 5 if i % 10 == 9 else i
        f.write(f"+86139{p:08d},fan{i}@example.com,Fan {i},{cities[i % 5]},{i % 5000},expo-2026;wave-{i % 3},granted\n")
PY
  SCRM_REDIS_URL="redis://127.0.0.1:$rport" SCRM_PORT="$gport" SCRM_HOST=127.0.0.1 SCRM_LOG_LEVEL=warning SCRM_ADMIN_TOKEN="$tok" \
    "$bin/scrm-gateway" >"$work/gateway.log" 2>&1 & gw=$!
  for _ in $(seq 100); do curl -sf "localhost:$gport/readyz" >/dev/null && break; sleep 0.1; done
  local rpid g0 r0 start uploaded answer id state t_end g1 r1 rss_kb size
  rpid=$(redis_pid "$rport")
  g0=$(cpu_ticks "$gw"); r0=$(cpu_ticks "$rpid")
  size=$(stat -c %s "$work/customers.csv")
  echo "import benchmark: $(nproc) cores; gateway, Redis (AOF everysec) and curl share the machine; $rows rows, $((size / 1024 / 1024)) MiB CSV"
  start=$(date +%s.%N)
  answer=$(curl -sS -XPOST -H "Authorization: Bearer $tok" -H "Content-Type: text/csv" --data-binary "@$work/customers.csv" "localhost:$gport/api/v1/customers/import")
  uploaded=$(date +%s.%N)
  id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$answer")
  state=""
  for _ in $(seq 6000); do
    state=$(curl -s -H "Authorization: Bearer $tok" "localhost:$gport/api/v1/imports/$id")
    grep -qE '"state":"(completed|failed)"' <<<"$state" && break
    sleep 0.05
  done
  t_end=$(date +%s.%N)
  g1=$(cpu_ticks "$gw"); r1=$(cpu_ticks "$rpid")
  rss_kb=$(awk '/VmHWM/{print $2}' "/proc/$gw/status")
  # Audiences over the imported attributes (preview: count and sample, evaluated in Redis).
  local previews=""
  for expr in "profile.spend>=1000" "profile.city=Shanghai & profile.spend>=4000" "expo-2026 & !wave-1 & profile.spend<100"; do
    previews+="$expr"$'\t'"$(curl -s -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
      -d "{\"expression\":\"$expr\",\"sample\":10}" "localhost:$gport/api/v1/audiences/preview")"$'\n'
  done
  local hz; hz=$(getconf CLK_TCK)
  python3 - "$state" "$start" "$uploaded" "$t_end" "$rows" "$((g1 - g0))" "$((r1 - r0))" "$hz" "$rss_kb" "$previews" <<'PY'
import json, sys
job = json.loads(sys.argv[1]); start, up, end = map(float, sys.argv[2:5]); rows = int(sys.argv[5])
previews = [l.split("\t", 1) for l in sys.argv[10].splitlines() if "\t" in l]
g, r, hz, rss = int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9])
total = end - start
def line(k, v): print(f"{k:<52} {v:>14}")
line("job state", job["state"])
line("rows read / created / updated / merged / rejected", f'{job["rowsRead"]} / {job["created"]} / {job["updated"]} / {job["merged"]} / {job["rejected"]}')
line("upload answered (s)", f"{up - start:.1f}")
line("import complete (s, from the first byte)", f"{total:.1f}")
line("rows per second", f"{rows / total:,.0f}")
line("gateway CPU per row (us)", f"{g / hz * 1e6 / rows:.1f}")
line("Redis CPU per row (us)", f"{r / hz * 1e6 / rows:.1f}")
line("gateway peak RSS", f"{rss // 1024} MB")
for expr, answer in previews:
    try:
        p = json.loads(answer)
    except ValueError:
        p = {}
    shown = f'{p["elapsedMs"]} ms ({p["count"]} selected)' if "elapsedMs" in p else f"failed: {answer[:120]}"
    line(f"preview {expr}", shown)
print(f"RESULT state={job['state']} seconds={total:.1f} rate={rows / total:.0f} rss_mb={rss // 1024}")
PY
}
