# Shared by scripts/bench.d/*.sh (sourced): a work directory and a Redis (AOF, fsync every second) on a
# free port, stopped with the gateway ($gw) when the calling function returns.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# Sets work, rport, gport, bin (the release binaries) and starts redis-server.
bench_setup() {
  bin="$(swift build -c release --show-bin-path)"
  work="$(mktemp -d)"
  read -r rport gport <<<"$(free_ports 2)"  # free_ports: scripts/lib.sh
  redis-server --port "$rport" --bind 127.0.0.1 --dir "$work" --appendonly yes --appendfsync everysec --save "" --daemonize yes --logfile "$work/redis.log"
  for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
}

bench_cleanup() {
  [ -n "${gw:-}" ] && kill "$gw" 2>/dev/null
  redis-cli -p "$rport" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$work"
}
