# Shared by scripts/run and scripts/test. Sourced, not run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Installs the Debian packages the gateway needs when any is missing (as root, or through sudo).
ensure_packages() {
  local missing=()
  dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev)
  dpkg -s libhiredis-dev >/dev/null 2>&1 || missing+=(libhiredis-dev)
  dpkg -s libcurl4-openssl-dev >/dev/null 2>&1 || missing+=(libcurl4-openssl-dev)
  dpkg -s libqrencode-dev >/dev/null 2>&1 || missing+=(libqrencode-dev)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
  dpkg -s python3-aiosmtpd >/dev/null 2>&1 || missing+=(python3-aiosmtpd)
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Starts redis-server with AOF under ./data/redis on $1 unless it already answers there.
start_local_redis() {
  local port="$1"
  mkdir -p "$ROOT/data/redis"
  if redis-cli -p "$port" ping >/dev/null 2>&1; then return 0; fi
  redis-server --port "$port" --bind 127.0.0.1 --dir "$ROOT/data/redis" --appendonly yes --save "" \
    --daemonize yes --pidfile "$ROOT/data/redis/redis.pid" --logfile "$ROOT/data/redis/redis.log"
  for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "redis-server did not start; see data/redis/redis.log" >&2
  return 1
}

# Prints $1 distinct free loopback ports on one line. The sockets are bound together before any
# closes, so the kernel cannot hand the same port out twice (separate picks can collide).
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# Starts a Redis Cluster of $1 masters with $2 replicas each on free loopback ports, under $3 (a data
# directory, emptied first), with a 1 s node timeout so that a failover takes about a second. Prints
# the nodes' ports, masters first, comma-separated. Stop it with stop_redis_cluster $3.
start_redis_cluster() {
  local masters="$1" replicas="$2" dir="$3"
  local count=$((masters * (1 + replicas)))
  rm -rf "$dir" && mkdir -p "$dir"
  local ports buses
  read -r -a ports <<<"$(free_ports "$((count * 2))")"
  local nodes=() list=()
  for i in $(seq 0 $((count - 1))); do
    local port="${ports[$i]}" bus="${ports[$((count + i))]}"
    mkdir -p "$dir/$port"
    redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file nodes.conf --cluster-port "$bus" \
      --cluster-node-timeout 1000 --dir "$dir/$port" --appendonly yes --appendfsync everysec --save "" \
      --daemonize yes --pidfile "$dir/$port/redis.pid" --logfile "$dir/$port/redis.log"
    nodes+=("127.0.0.1:$port")
    list+=("$port")
  done
  for port in "${list[@]}"; do
    for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas "$replicas" --cluster-yes >"$dir/create.log" 2>&1 \
    || { echo "redis-cli --cluster create failed; see $dir/create.log" >&2; return 1; }
  for port in "${list[@]}"; do
    for _ in $(seq 1 200); do
      redis-cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' \
        && ! redis-cli -p "$port" info replication | grep -q '^master_link_status:down' && break
      sleep 0.1
    done
  done
  (IFS=,; echo "${list[*]}")
}

# Stops every node of the cluster under $1.
stop_redis_cluster() {
  local dir="$1"
  for pidfile in "$dir"/*/redis.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
}

# Prints the process id of the redis-server on loopback port $1 (for its CPU time in /proc).
redis_pid() {
  redis-cli -p "$1" info server | awk -F: '/^process_id:/{print $2}' | tr -d '\r'
}
