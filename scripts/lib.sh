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
