#!/bin/sh
# RSS of an idle `teragate serve` with the built-in plugins, ROUNDS times for each binary given,
# alternating them (the box may be shared: compare figures of the same run only). Each server
# gets a fresh data directory (so its first start compiles the plugins into its cache) and is
# measured WAIT seconds after it answers /healthz, then started again on the same directory (a
# restart: the compilation cache is warm) and measured again.
# Usage: docs/bench/start-rss.sh ROUNDS WAIT BINARY...
set -eu
rounds=$1 wait=$2; shift 2
port=$(( 43000 + $$ % 1000 ))
rss() { awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' /proc/$1/status; }
run() { # bin dir → prints RSS
	"$1" serve --insecure --listen 127.0.0.1:$port --data "$2" --log-level warn >>"$2.log" 2>&1 &
	pid=$!
	until curl -fs http://127.0.0.1:$port/healthz >/dev/null; do sleep 0.1; done
	sleep "$wait"
	rss $pid
	kill $pid; wait $pid 2>/dev/null || true
}
r=1
while [ $r -le "$rounds" ]; do
	for bin in "$@"; do
		d=$(mktemp -d)
		first=$(run "$bin" "$d/data")
		again=$(run "$bin" "$d/data")
		echo "round $r  $bin  first start $first, restart $again"
		rm -rf "$d"
	done
	r=$((r+1))
done
