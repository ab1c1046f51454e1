#!/bin/sh
# RSS of an idle gateway before and after N plugin reloads, for one or more teragate binaries,
# alternating them in one run (the box may be shared: compare figures of the same run only).
# Usage: docs/bench/reload-rss.sh N BINARY... (the first binary drives every run with its bench).
# Each server runs with the built-in plugins and the embedded demo identities on plain HTTP; the
# bench writes N+1 versions of filter.device.wasm into its plugin directory, 1.2 s apart at least.
set -eu
n=$1; shift
bench=$1
for bin in "$@"; do
	tmp=$(mktemp -d)
	mkdir -p "$tmp/plugins"
	port=$(( 42000 + $$ % 1000 ))
	"$bin" serve --insecure --listen 127.0.0.1:$port --data "$tmp/data" --plugins "$tmp/plugins" --log-level warn >"$tmp/log" 2>&1 &
	pid=$!
	i=0
	until curl -fs http://127.0.0.1:$port/healthz >/dev/null; do
		i=$((i+1)); [ $i -lt 600 ] || { echo "server did not start: $(tail -5 "$tmp/log")"; kill $pid; exit 1; }
		sleep 0.1
	done
	token=$(awk '/admin service/ && /token/ {for (i=1;i<=NF;i++) if ($i=="token") print $(i+1)}' "$tmp/log" | head -1)
	echo "== $bin (pid $pid)"
	"$bench" bench --url http://127.0.0.1:$port --pid $pid --service-token "$token" \
		--plugins "$tmp/plugins" --plugin-reloads "$n" 2>"$tmp/progress" || tail -5 "$tmp/progress"
	kill $pid; wait $pid 2>/dev/null || true
	rm -rf "$tmp"
done
